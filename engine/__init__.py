"""What is computed: faces, models, training, embeddings, classifiers,
metrics, projections, the DuckDB store, and the `dfatlas` CLI."""
