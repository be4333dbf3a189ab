"""Where jobs run: local (embedded default), docker, slurm, kubernetes."""
