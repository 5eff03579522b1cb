from deploy_helpers import artifact_dir, session_file  # noqa: F401  (fixtures)
