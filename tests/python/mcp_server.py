"""A small MCP server (PyPI `mcp`, stdio) for Facio's MCP client tests.

`whoami` answers with the credential it was started with (SERVICE_TOKEN, which Facio
resolves from `${credentials.KEY}`); `grow` adds a tool and tells the client its tool
list changed; `fail` reports an error as a result.
"""

import os

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("facio-test-python")


@server.tool()
def whoami() -> str:
    """Says which service token this server was started with."""
    return f"token={os.environ.get('SERVICE_TOKEN', '<none>')}"


def late(text: str) -> str:
    """A tool that exists only after `grow`."""
    return f"late:{text}"


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `late` and tells the client the tool list changed."""
    server.add_tool(late, name="late")
    await ctx.notify_tools_changed()
    return "grown"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with `reason`."""
    raise ValueError(reason)


if __name__ == "__main__":
    server.run("stdio")
