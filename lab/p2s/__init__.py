"""Point-to-site, model to runtime: clients as data (model), Azure's rules (rules), swanctl trees (render),
certificates (pki, creds), what `lab up` loads and waits for (run), client profiles (profile) and reconnect
measurements on a running lab (measure)."""
