"""The training library: datasets (folders of classes), synthetic corpus, clustering."""
