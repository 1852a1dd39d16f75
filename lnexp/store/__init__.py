"""Everything lnexp writes and reads back: files and run folders (files), the JSON/CSV
documents (documents) and the PNG figures (figures)."""
