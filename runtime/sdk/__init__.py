"""The job SDK: create_job, job store, platforms, spec-param inference, checkpoints, S3 I/O."""
