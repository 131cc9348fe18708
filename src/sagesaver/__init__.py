"""SageSaver: find idle Amazon SageMaker resources, show what they cost, stop them safely."""

__version__ = "0.1.0"
