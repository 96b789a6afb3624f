"""Bring-your-own device configs: parse them, mount and load them, test them against the gateway."""
