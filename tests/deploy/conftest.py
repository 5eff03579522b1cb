from deploy_helpers import artifact_dir, procs, session_file  # noqa: F401  (fixtures)
