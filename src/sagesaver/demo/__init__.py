"""The demo: an embedded AWS simulator (moto with the AWS behaviours it lacks), a seeded fleet,
and ``sagesaver demo``. Left out of the Lambda package."""
