"""Validated model -> strongSwan configuration files, as pure functions (same input, same bytes)."""
