"""Bring-your-own device configs. Below the pipeline: read them (parse), compare them with Azure's end
(checks), mount and load them in place of the rendered config (byo), say why a tunnel fails (diagnose).
Above it: `lab test-device` (testing) and `lab reload NODE` (reload)."""
