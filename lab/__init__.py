"""lab: emulate Azure VPN Gateway on one machine with real IPsec (strongSwan in containers)."""
