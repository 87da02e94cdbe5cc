"""The corpus's tools: realistic read tools whose output a third party wrote, and
effectful tools with declared sinks (egress: where data or money goes; targets: what
is changed or deleted; amounts).

Reads a third party controls (mail, shared files, calendar invitations, transaction
subjects, channels, web pages, reviews) are `trusted=False`; reads of the user's own
records (contacts, file listing, balance, directory, hotel listings) are trusted.
Results are plain text where the real service returns text, so an injected value sits
at a line start or inside a multi-line block as it would in a real e-mail.
"""

from __future__ import annotations

from typing import Any

from bosun import tool
from bosun.spec.tool import ToolContext

from .world import world

# -- shared -------------------------------------------------------------------


@tool(effect="read", idempotent=True, trusted=False, egress=("url",))
def get_webpage(url: str, ctx: ToolContext) -> str:
    """Fetch a web page and return its text."""
    w = world(ctx)
    w.did("get_webpage", url=url)
    return w.data.get("webpages", {}).get(url, f"404 Not Found: {url}")


@tool(effect="irreversible", egress=("to",))
def send_email(to: list[str], subject: str, body: str, ctx: ToolContext) -> dict[str, Any]:
    """Send an e-mail from the user's account."""
    world(ctx).did("send_email", to=to, subject=subject, body=body)
    return {"sent": True, "to": to, "subject": subject}


# -- workspace: mail, calendar, files -----------------------------------------


@tool(effect="read", idempotent=True, trusted=False)
def list_inbox(ctx: ToolContext) -> str:
    """The user's inbox: id, sender and subject of each e-mail."""
    mails = world(ctx).data["emails"]
    return "\n".join(
        f"id: {m['id']} | from: {m['sender']} | subject: {m['subject']}" for m in mails
    )


@tool(effect="read", idempotent=True, trusted=False)
def read_email(email_id: str, ctx: ToolContext) -> str:
    """One e-mail with its body."""
    for m in world(ctx).data["emails"]:
        if m["id"] == email_id:
            return f"From: {m['sender']}\nSubject: {m['subject']}\n\n{m['body']}"
    raise LookupError(f"no e-mail with id {email_id}")


@tool(effect="read", idempotent=True)
def get_contact(name: str, ctx: ToolContext) -> str:
    """A contact from the user's address book."""
    for c in world(ctx).data.get("contacts", []):
        if name.lower() in c["name"].lower():
            return f"{c['name']} <{c['email']}>, phone {c['phone']}"
    raise LookupError(f"no contact named {name}")


@tool(effect="read", idempotent=True)
def list_files(ctx: ToolContext) -> str:
    """The files in the user's drive: id, name, owner."""
    files = world(ctx).data["files"]
    return "\n".join(f"{f['id']}: {f['name']} (owner {f['owner']})" for f in files)


@tool(effect="read", idempotent=True, trusted=False)
def read_file(file_id: str, ctx: ToolContext) -> str:
    """A file's content (shared files are written by others)."""
    for f in world(ctx).data["files"]:
        if f["id"] == file_id:
            return f["content"]
    raise LookupError(f"no file with id {file_id}")


@tool(effect="read", idempotent=True, trusted=False)
def list_events(day: str, ctx: ToolContext) -> str:
    """The calendar events of a day (invitations are written by their organisers)."""
    events = [e for e in world(ctx).data.get("events", []) if e["day"] == day]
    return (
        "\n".join(
            f"- {e['time']} {e['title']} with {', '.join(e['participants'])}\n  {e['description']}"
            for e in events
        )
        or f"no events on {day}"
    )


@tool(effect="irreversible", egress=("email",), targets=("file_id",))
def share_file(file_id: str, email: str, ctx: ToolContext) -> dict[str, Any]:
    """Share a file with someone (they can download it at once)."""
    world(ctx).did("share_file", file_id=file_id, email=email)
    return {"shared": file_id, "with": email}


@tool(effect="irreversible", targets=("file_id",))
def delete_file(file_id: str, ctx: ToolContext) -> dict[str, Any]:
    """Delete a file for good."""
    w = world(ctx)
    w.did("delete_file", file_id=file_id)
    w.data["files"] = [f for f in w.data["files"] if f["id"] != file_id]
    return {"deleted": file_id}


@tool(effect="write")
def create_file(name: str, content: str, ctx: ToolContext) -> dict[str, Any]:
    """Create a file in the user's drive."""
    w = world(ctx)
    file = {"id": w.new_id(), "name": name, "content": content, "owner": "me"}
    w.data["files"].append(file)
    w.did("create_file", name=name, content=content)
    return file  # echoes the content back, as real drives do


@tool(effect="write", egress=("participants",))
def create_event(
    title: str, start: str, participants: list[str], ctx: ToolContext, description: str = ""
) -> dict[str, Any]:
    """Create a calendar event and invite its participants."""
    w = world(ctx)
    w.did("create_event", title=title, start=start, participants=participants)
    return {"id": w.new_id(), "title": title, "start": start, "participants": participants,
            "description": description}  # fmt: skip


# -- banking ------------------------------------------------------------------


@tool(effect="read", idempotent=True)
def get_balance(ctx: ToolContext) -> str:
    """The account's balance."""
    return f"{world(ctx).data['balance']:.2f} EUR"


@tool(effect="read", idempotent=True)
def get_user_info(ctx: ToolContext) -> str:
    """The account holder's name, IBAN and address."""
    u = world(ctx).data["user"]
    return f"name: {u['name']}\niban: {u['iban']}\naddress: {u['address']}"


@tool(effect="read", idempotent=True, trusted=False)
def get_transactions(ctx: ToolContext, count: int = 5) -> str:
    """The latest transactions (their subjects are written by the other party)."""
    rows = world(ctx).data["transactions"][-count:]
    return "\n".join(
        f"id {t['id']} | {t['date']} | {t['counterparty']} | IBAN {t['iban']} | "
        f"{t['amount']:.2f} EUR | {t['subject']}"
        for t in rows
    )


@tool(effect="read", idempotent=True, trusted=False)
def read_document(name: str, ctx: ToolContext) -> str:
    """A document the user received (a bill, a notice, a letter)."""
    docs = world(ctx).data["documents"]
    if name not in docs:
        raise LookupError(f"no document named {name}")
    return docs[name]


@tool(effect="irreversible", egress=("iban",), amounts=("amount",))
def transfer_money(iban: str, amount: float, subject: str, ctx: ToolContext) -> dict[str, Any]:
    """Send money to an IBAN now."""
    w = world(ctx)
    w.did("transfer_money", iban=iban, amount=amount, subject=subject)
    w.data["balance"] -= amount
    return {"sent": amount, "to": iban, "subject": subject}


@tool(effect="read", idempotent=True)
def list_standing_orders(ctx: ToolContext) -> str:
    """The account's standing orders."""
    return "\n".join(
        f"id {s['id']}: {s['amount']:.2f} EUR monthly to {s['iban']} ({s['subject']})"
        for s in world(ctx).data["standing_orders"]
    )


@tool(effect="write", egress=("iban",), targets=("order_id",), amounts=("amount",))
def update_standing_order(
    order_id: str, ctx: ToolContext, iban: str | None = None, amount: float | None = None
) -> dict[str, Any]:
    """Change a standing order's recipient or amount."""
    args = {k: v for k, v in (("iban", iban), ("amount", amount)) if v is not None}
    world(ctx).did("update_standing_order", order_id=order_id, **args)
    return {"updated": order_id, **args}


@tool(effect="write", egress=("iban",))
def add_payee(name: str, iban: str, ctx: ToolContext) -> dict[str, Any]:
    """Save a payee (name and IBAN) for later transfers."""
    world(ctx).did("add_payee", name=name, iban=iban)
    return {"payee": name, "iban": iban}  # echoes the IBAN back


# -- messaging ----------------------------------------------------------------


@tool(effect="read", idempotent=True)
def list_channels(ctx: ToolContext) -> str:
    """The workspace's channels."""
    return "\n".join(world(ctx).data["channels"])


@tool(effect="read", idempotent=True, trusted=False)
def read_channel(channel: str, ctx: ToolContext) -> str:
    """The latest messages of a channel (anyone in it wrote them)."""
    messages = world(ctx).data["channels"].get(channel)
    if messages is None:
        raise LookupError(f"no channel {channel}")
    return "\n".join(f"{m['author']}: {m['text']}" for m in messages)


@tool(effect="read", idempotent=True, trusted=False)
def read_dms(ctx: ToolContext) -> str:
    """The user's direct messages."""
    return "\n".join(f"{m['author']}: {m['text']}" for m in world(ctx).data["dms"])


@tool(effect="read", idempotent=True)
def get_directory(ctx: ToolContext) -> str:
    """The workspace's members with their e-mail and phone."""
    return "\n".join(
        f"{u['user']} | {u['email']} | {u['phone']}" for u in world(ctx).data["directory"]
    )


@tool(effect="write", egress=("channel",))
def post_message(channel: str, text: str, ctx: ToolContext) -> dict[str, Any]:
    """Post a message to a channel."""
    world(ctx).did("post_message", channel=channel, text=text)
    return {"posted": channel}


@tool(effect="write", egress=("user",))
def send_dm(user: str, text: str, ctx: ToolContext) -> dict[str, Any]:
    """Send a direct message to a member."""
    world(ctx).did("send_dm", user=user, text=text)
    return {"sent_to": user}


@tool(effect="irreversible", egress=("email",))
def invite_user(user: str, email: str, ctx: ToolContext) -> dict[str, Any]:
    """Invite someone into the workspace (they can read every public channel)."""
    world(ctx).did("invite_user", user=user, email=email)
    return {"invited": user, "email": email}


@tool(effect="irreversible", targets=("user",))
def remove_user(user: str, ctx: ToolContext) -> dict[str, Any]:
    """Remove a member from the workspace."""
    world(ctx).did("remove_user", user=user)
    return {"removed": user}


@tool(effect="irreversible", egress=("phone",))
def send_sms(phone: str, text: str, ctx: ToolContext) -> dict[str, Any]:
    """Send a text message from the user's number."""
    world(ctx).did("send_sms", phone=phone, text=text)
    return {"sent_to": phone}


# -- travel ---------------------------------------------------------------------


@tool(effect="read", idempotent=True)
def search_hotels(city: str, ctx: ToolContext) -> str:
    """Hotels in a city with price and rating (the booking platform's own data)."""
    return "\n".join(
        f"{h['name']} | {h['city']} | {h['price']} EUR/night | rating {h['rating']}"
        for h in world(ctx).data["hotels"]
        if h["city"] == city
    )


@tool(effect="read", idempotent=True, trusted=False)
def get_reviews(name: str, ctx: ToolContext) -> str:
    """Guests' reviews of a hotel or restaurant."""
    return "\n".join(world(ctx).data["reviews"].get(name, ["no reviews yet"]))


@tool(effect="read", idempotent=True)
def search_restaurants(city: str, ctx: ToolContext) -> str:
    """Restaurants in a city with cuisine and rating."""
    return "\n".join(
        f"{r['name']} | {r['city']} | {r['cuisine']} | rating {r['rating']}"
        for r in world(ctx).data["restaurants"]
        if r["city"] == city
    )


@tool(effect="read", idempotent=True, sensitive=("passport",))
def get_user_profile(ctx: ToolContext) -> str:
    """The traveller's profile: name, e-mail, phone, passport number."""
    u = world(ctx).data["user"]
    return f"name: {u['name']}\nemail: {u['email']}\nphone: {u['phone']}\npassport: {u['passport']}"


@tool(effect="irreversible", targets=("hotel",))
def book_hotel(hotel: str, check_in: str, check_out: str, ctx: ToolContext) -> dict[str, Any]:
    """Book (and pay for) a hotel room."""
    world(ctx).did("book_hotel", hotel=hotel, check_in=check_in, check_out=check_out)
    return {"booked": hotel, "check_in": check_in, "check_out": check_out}


@tool(effect="irreversible", targets=("restaurant",), amounts=("party_size",))
def reserve_restaurant(
    restaurant: str, date: str, party_size: int, ctx: ToolContext
) -> dict[str, Any]:
    """Reserve a table."""
    world(ctx).did("reserve_restaurant", restaurant=restaurant, date=date, party_size=party_size)
    return {"reserved": restaurant, "date": date, "party_size": party_size}


WORKSPACE = (list_inbox, read_email, get_contact, list_files, read_file, list_events,
             send_email, share_file, delete_file, create_file, create_event, get_webpage)  # fmt: skip
BANKING = (get_balance, get_user_info, get_transactions, read_document, transfer_money,
           list_standing_orders, update_standing_order, add_payee, send_email, get_webpage)  # fmt: skip
MESSAGING = (list_channels, read_channel, read_dms, get_directory, post_message, send_dm,
             invite_user, remove_user, send_sms, get_webpage)  # fmt: skip
TRAVEL = (search_hotels, get_reviews, search_restaurants, get_user_profile, book_hotel,
          reserve_restaurant, send_email, get_webpage)  # fmt: skip
TOOLS = {"workspace": WORKSPACE, "banking": BANKING, "messaging": MESSAGING, "travel": TRAVEL}
