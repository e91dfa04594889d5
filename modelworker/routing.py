"""Channel-layer consumers of the model worker (used in production)."""

channel_consumers: dict = {}
