"""The parser's training side: the generated data set (phrasings, templates, generator),
fine-tuning (train), scoring (evaluate) and the speed figures (bench). The runtime in
intent_llm/ never imports it (the import contract in pyproject.toml)."""
