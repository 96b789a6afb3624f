"""Operations on a running lab, above the pipeline: `lab apply` (apply, apply_live), `lab fault` / `lab restore`
(faults) and `lab bench` (bench)."""
