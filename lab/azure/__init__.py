"""Azure VPN Gateway facts and rules: the single source for limits, defaults and allowed values."""
