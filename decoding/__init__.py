"""NLP4Neuro Explorer core: recordings, atlas, LLM decoders, salience. Never imports Streamlit."""

__version__ = "0.1.0"
