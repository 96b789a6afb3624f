"""`lab ui`: a live web view of a running lab (docs/ui.md). Pure parts: graph model, SVG, events, tokens;
the server (stdlib http.server, server-sent events) and the actions at the edges."""
