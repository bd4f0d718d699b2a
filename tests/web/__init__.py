"""The web app: API, portal, dashboard, showcase, tracking routes, security."""
