from stream_helpers import artifact_dir, ctx, engine, start_service  # noqa: F401  (fixtures)
