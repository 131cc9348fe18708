"""The pipelines: read (AWS) -> decide (core) -> act (AWS) -> record (ledger), one module per
command family. The CLI, the Lambda handlers and the demo call these and only render."""
