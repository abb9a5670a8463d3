// Swagger UI from the swagger-ui-bundle wheel: nothing is loaded from the internet.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
