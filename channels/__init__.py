"""Ways in besides the JSON intake: LINE (webhook and conversation) and Open311 GeoReport v2."""
