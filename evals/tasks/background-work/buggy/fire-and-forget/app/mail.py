"""The mail service's client (given)."""

import httpx2


async def send_welcome(http: httpx2.AsyncClient, mail_url: str, email: str) -> None:
    """Ask the mail service to send the welcome mail; raises httpx2.HTTPError when it fails."""
    response = await http.get(mail_url, params={"template": "welcome", "to": email})
    response.raise_for_status()
