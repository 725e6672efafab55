"""NLP4Neuro Explorer dashboard: Streamlit pages, widgets and Plotly figures (no decoding logic)."""
