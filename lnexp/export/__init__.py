"""`lnexp export`: copy finished folders into other tools (MLflow). Each exporter is a module
that imports its tool only inside its functions, so no other command pays for that import."""
