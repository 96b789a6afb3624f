"""High availability of gateway instances: warm-standby configs (standby), the agents that make failover
happen (agents), failover measurements as data (failover) and `lab failover` / `lab probe` (failover_run)."""
