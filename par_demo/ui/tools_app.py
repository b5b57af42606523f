"""The MCP server, an app of its own beside the page. Gradio's MCP server lists an app's
documented endpoints as tools; the page documents its endpoints for gradio_client (named
parameters, view_api), so the tools are declared by a Blocks of their own (mcp_tools.py's typed
functions), whose MCP server answers at the page's address, /gradio_api/mcp/. A tool call goes
from there to the page, where the same functions are registered undocumented: it waits in the
page's queue for the same slots as the page's runs, and its pictures are the page's files."""
from __future__ import annotations

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount, Route

from par_demo.ui.mcp_tools import register_mcp_tools
from par_demo.ui.page import TITLE

MCP_ROUTE = "/gradio_api/mcp"  # where Gradio's MCP server answers, in every app


def build_tools() -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False) as tools:  # the MCP server's name
        register_mcp_tools()
    return tools


def beside_the_page(tools: gr.Blocks) -> dict:
    """The page's `launch(app_kwargs=...)`: its MCP address handled by the tools' app, started
    and stopped with the page's server. The request reaches that app unchanged, so its MCP
    server sends the call to the page (the app the address belongs to)."""
    host = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    gr.mount_gradio_app(host, tools, "/tools", mcp_server=True)
    (mounted,) = [r.app for r in host.routes if isinstance(r, Mount)]
    return {"routes": [Route(MCP_ROUTE, mounted), Route(MCP_ROUTE + "/{rest:path}", mounted)],
            "lifespan": host.router.lifespan_context}
