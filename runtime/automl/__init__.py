"""AutoML for skills: search space from the packaged train schema, Optuna algorithms, the run loop.

``search_space`` is pure (schema in, parameter specs out); ``algorithms`` maps
an algorithm name to an Optuna sampler/pruner and an epoch budget plan;
``engine.run_automl`` runs the study as train/evaluate jobs through the job SDK;
``workspace``, ``plots`` and ``status`` read and write the workspace folder.
"""
