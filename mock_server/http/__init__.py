"""HTTP: the request pipeline, the admin routes, the app and the in-process server."""
