"""Pure decision rules, one module per resource kind: no boto3, no clock, no I/O."""
