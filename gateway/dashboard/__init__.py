"""The ops dashboard's static files (index.html, app.js, app.css), served by ``gateway.api.routes.dashboard``."""
