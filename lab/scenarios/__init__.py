"""Training scenarios: the catalog under scenarios/ and the learner's progress (catalog), and
`lab scenario start | check | reset` over the pipeline (run)."""
