"""BGP over the tunnels: Azure's BGP model (peers, rules), FRR configs, the daemons and the routes views."""
