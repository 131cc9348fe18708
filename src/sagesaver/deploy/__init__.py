"""Serverless deployment: CloudFormation template rendering (and, later, packaging and apply)."""
