"""The runtime: spec building and validation, policy, job SDK, AutoML and the model."""
