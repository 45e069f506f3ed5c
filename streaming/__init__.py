"""The served side: FastAPI app, API routes, offscreen rendering, WebRTC streams and shared rooms."""
