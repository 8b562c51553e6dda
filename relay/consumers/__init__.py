"""Tools for people reading relay's topics: JSON Schemas of the values, ``relay tail``,
``relay dead-letters``. Nothing here runs inside ``relay serve``."""
