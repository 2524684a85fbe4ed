"""Jobs: each reads files, calls the components and writes its artifacts (score, adapter train, rm train, align
routes, generate, evaluate, the paper recipes). Components below work on objects and tensors; the command line
above builds a job's config and runs it."""
