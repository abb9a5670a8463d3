"""Ways in beyond the JSON intake route: files with a complaint, officers' intake, email intake."""
