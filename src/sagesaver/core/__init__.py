"""The pure core: data, policy, prices, time, the decision rules and the grace-period plan.

No boto3, no clock (``now`` is a parameter), no I/O but reading the bundled data. Checked by
import-linter (``make lint``)."""
