"""The restaurants of the reference platform and what each kitchen stocks.

Plain data, read by :mod:`cronclaim.demo.platform`'s generator. Restaurant ids are the
owner's first name, as in the incident's claim key ``inventory-predict:aitor:2026-05-19``.
Quantities are per guest (``per_guest``) in the ingredient's unit; delivery weekdays
count from 0 = Monday.
"""

from __future__ import annotations

from dataclasses import dataclass

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
MON_TO_SAT = (MON, TUE, WED, THU, FRI, SAT)
EVERY_DAY = (MON, TUE, WED, THU, FRI, SAT, SUN)
#: Day of the year of the summer peak: late July up north, late January down south.
NORTHERN_SUMMER = 205
SOUTHERN_SUMMER = 20


@dataclass(frozen=True, kw_only=True, slots=True)
class IngredientSpec:
    id: str
    name: str
    unit: str  # "kg", "l" or "pcs"
    per_guest: float
    shelf_life_days: int
    lead_time_days: int
    delivery_weekdays: tuple[int, ...]
    pack_size: float
    noise: float = 0.18  # relative day-to-day noise of this ingredient's usage


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceSpec:
    name: str
    kind: str  # "watch" or "phone"
    registered: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class RestaurantSpec:
    id: str
    name: str
    city: str
    time_zone: str
    covers: int
    cuisine: str
    owner: str
    coastal: bool
    turns: float  # guests per cover on an average open day
    tourist_weekend: float  # extra weekend footfall from visitors (1.0: none)
    summer: float  # amplitude of the yearly cycle (0.5: +50 % at the peak)
    peak_day: int  # day of the year the yearly cycle peaks
    closed: tuple[int, ...]  # weekdays the restaurant does not open
    devices: tuple[DeviceSpec, ...]
    ingredients: tuple[IngredientSpec, ...]


def _i(
    key: str,
    name: str,
    unit: str,
    per_guest: float,
    shelf: int,
    lead: int,
    weekdays: tuple[int, ...],
    pack: float,
    noise: float = 0.18,
) -> IngredientSpec:
    return IngredientSpec(
        id=key,
        name=name,
        unit=unit,
        per_guest=per_guest,
        shelf_life_days=shelf,
        lead_time_days=lead,
        delivery_weekdays=weekdays,
        pack_size=pack,
        noise=noise,
    )


def _watch_and_phone(owner: str) -> tuple[DeviceSpec, ...]:
    return (
        DeviceSpec(name=f"{owner}'s Apple Watch", kind="watch"),
        DeviceSpec(name=f"{owner}'s iPhone", kind="phone"),
    )


def _phone(owner: str) -> tuple[DeviceSpec, ...]:
    return (DeviceSpec(name=f"{owner}'s iPhone", kind="phone"),)


RESTAURANTS: tuple[RestaurantSpec, ...] = (
    RestaurantSpec(
        id="aitor",
        name="Pintxos del Mercado",
        city="Bilbao (Casco Viejo)",
        time_zone="Europe/Madrid",
        covers=38,
        cuisine="Basque pintxos",
        owner="Aitor",
        coastal=True,
        turns=2.6,
        tourist_weekend=1.35,
        summer=0.15,
        peak_day=NORTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("Aitor"),
        ingredients=(
            # The ingredient that ran out in the incident.
            _i("cepe-mushrooms", "cèpe mushrooms", "kg", 0.02, 6, 3, (MON, THU), 1.0),
            _i("salt-cod", "salt cod (bacalao)", "kg", 0.03, 21, 2, (TUE, FRI), 2.5),
            _i("anchovies", "fresh anchovies (antxoak)", "kg", 0.025, 2, 1, MON_TO_SAT, 1.0, 0.25),
            _i(
                "spider-crab",
                "spider crab meat (txangurro)",
                "kg",
                0.01,
                3,
                2,
                (TUE, THU, SAT),
                0.5,
            ),
            _i("idiazabal", "Idiazabal cheese", "kg", 0.012, 60, 4, (WED,), 3.0),
            _i("jamon-iberico", "jamón ibérico", "kg", 0.015, 90, 5, (WED,), 7.5),
            _i("guindillas", "guindilla peppers", "kg", 0.008, 14, 2, (TUE, FRI), 1.0),
            _i("baguettes", "baguettes", "pcs", 0.15, 1, 1, EVERY_DAY, 10.0, 0.12),
            _i("txakoli", "txakoli", "l", 0.1, 365, 6, (THU,), 9.0),
            _i("eggs", "eggs", "pcs", 0.3, 28, 2, (MON, WED, FRI), 30.0),
        ),
    ),
    RestaurantSpec(
        id="mert",
        name="Ayvalık Köfte + Deniz",  # noqa: RUF001 - Turkish dotless i
        city="Ayvalık (Cunda)",  # noqa: RUF001 - Turkish dotless i
        time_zone="Europe/Istanbul",
        covers=65,
        cuisine="Aegean seafood",
        owner="Mert",
        coastal=True,
        turns=1.9,
        tourist_weekend=1.3,
        summer=0.45,
        peak_day=NORTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("Mert"),
        ingredients=(
            _i("sea-bass", "sea bass (levrek)", "kg", 0.1, 3, 1, MON_TO_SAT, 2.0),
            _i("octopus", "octopus (ahtapot)", "kg", 0.04, 3, 1, MON_TO_SAT, 2.0),
            _i("shrimp", "Aegean shrimp (karides)", "kg", 0.035, 2, 1, MON_TO_SAT, 1.0, 0.22),
            _i("kofte-mince", "köfte mince (kıyma)", "kg", 0.08, 2, 1, MON_TO_SAT, 2.5),  # noqa: RUF001 - Turkish dotless i
            _i(
                "oyster-mushrooms",
                "oyster mushrooms (istiridye mantarı)",  # noqa: RUF001 - Turkish dotless i
                "kg",
                0.015,
                5,
                2,
                (TUE, FRI),
                1.0,
            ),
            _i("olive-oil", "Ayvalık olive oil", "l", 0.03, 540, 3, (WED,), 5.0),  # noqa: RUF001 - Turkish dotless i
            _i("raki", "rakı", "l", 0.04, 3650, 4, (THU,), 7.0),  # noqa: RUF001 - Turkish dotless i
            _i("village-bread", "village bread", "pcs", 0.35, 1, 1, EVERY_DAY, 20.0, 0.12),
            _i("lemons", "lemons", "kg", 0.025, 14, 2, (TUE, FRI), 5.0),
            _i("white-cheese", "white cheese (beyaz peynir)", "kg", 0.02, 30, 3, (MON, THU), 4.0),
        ),
    ),
    RestaurantSpec(
        id="lucia",
        name="Osteria del Porto",
        city="Naples",
        time_zone="Europe/Rome",
        covers=45,
        cuisine="Neapolitan trattoria",
        owner="Lucia",
        coastal=True,
        turns=2.0,
        tourist_weekend=1.25,
        summer=0.3,
        peak_day=NORTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("Lucia"),
        ingredients=(
            _i("mozzarella", "mozzarella di bufala", "kg", 0.05, 4, 1, MON_TO_SAT, 2.0),
            _i("tomatoes", "San Marzano tomatoes", "kg", 0.08, 365, 4, (TUE,), 10.0),
            _i("flour", "00 flour", "kg", 0.12, 180, 3, (MON, THU), 25.0),
            _i("clams", "clams (vongole)", "kg", 0.04, 2, 1, MON_TO_SAT, 1.0, 0.22),
            _i("basil", "basil", "kg", 0.004, 5, 1, (MON, WED, FRI), 0.25),
            _i("parmigiano", "Parmigiano Reggiano", "kg", 0.01, 120, 5, (WED,), 4.0),
            _i("lemons", "Amalfi lemons", "kg", 0.01, 14, 2, (TUE, FRI), 5.0),
        ),
    ),
    RestaurantSpec(
        id="sophie",
        name="Le Petit Zinc",
        city="Lyon",
        time_zone="Europe/Paris",
        covers=30,
        cuisine="Lyonnais bouchon",
        owner="Sophie",
        coastal=False,
        turns=1.8,
        tourist_weekend=1.1,
        summer=0.05,
        peak_day=NORTHERN_SUMMER,
        closed=(SUN, MON),
        devices=_phone("Sophie"),
        ingredients=(
            _i("beef-cheek", "beef cheek", "kg", 0.06, 4, 2, (TUE, THU, SAT), 2.0),
            _i("butter", "butter", "kg", 0.03, 30, 2, (TUE, FRI), 2.5),
            _i("shallots", "shallots", "kg", 0.015, 30, 2, (TUE, FRI), 5.0),
            _i("baguettes", "baguettes", "pcs", 0.4, 1, 1, (TUE, WED, THU, FRI, SAT), 10.0, 0.12),
            _i("comte", "Comté", "kg", 0.02, 90, 5, (WED,), 5.0),
            _i("creme-fraiche", "crème fraîche", "l", 0.02, 10, 2, (TUE, FRI), 2.0),
            _i("eggs", "eggs", "pcs", 0.5, 28, 2, (TUE, FRI), 30.0),
            _i("quenelles", "pike quenelles", "pcs", 0.3, 3, 2, (TUE, THU, SAT), 20.0),
        ),
    ),
    RestaurantSpec(
        id="joao",
        name="Tasca do Cais",
        city="Porto (Ribeira)",
        time_zone="Europe/Lisbon",
        covers=42,
        cuisine="Portuguese tasca",
        owner="João",
        coastal=True,
        turns=2.1,
        tourist_weekend=1.3,
        summer=0.3,
        peak_day=NORTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("João"),
        ingredients=(
            _i("sardines", "sardines", "kg", 0.06, 2, 1, MON_TO_SAT, 2.0, 0.22),
            _i("bacalhau", "bacalhau", "kg", 0.05, 30, 3, (TUE, FRI), 5.0),
            _i("octopus", "octopus (polvo)", "kg", 0.03, 3, 1, MON_TO_SAT, 2.0),
            _i("potatoes", "potatoes", "kg", 0.12, 30, 2, (TUE, FRI), 10.0),
            _i("vinho-verde", "vinho verde", "l", 0.12, 365, 4, (WED,), 9.0),
            _i("broa", "broa (corn bread)", "pcs", 0.25, 2, 1, MON_TO_SAT, 10.0, 0.12),
            _i("chourico", "chouriço", "kg", 0.015, 30, 3, (TUE, FRI), 2.0),
        ),
    ),
    RestaurantSpec(
        id="niamh",
        name="The Salt Kitchen",
        city="Galway",
        time_zone="Europe/Dublin",
        covers=55,
        cuisine="Irish seafood gastropub",
        owner="Niamh",
        coastal=True,
        turns=1.7,
        tourist_weekend=1.3,
        summer=0.25,
        peak_day=NORTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("Niamh"),
        ingredients=(
            _i("oysters", "Galway Bay oysters", "pcs", 0.5, 5, 2, (TUE, THU, SAT), 50.0),
            _i("mussels", "rope mussels", "kg", 0.08, 3, 1, MON_TO_SAT, 5.0),
            _i("smoked-salmon", "smoked salmon", "kg", 0.02, 14, 3, (TUE, FRI), 2.0),
            _i("soda-bread", "brown soda bread", "pcs", 0.1, 2, 1, MON_TO_SAT, 6.0, 0.12),
            _i("potatoes", "potatoes", "kg", 0.15, 30, 2, (TUE, FRI), 25.0),
            _i("stout", "stout (keg)", "l", 0.35, 60, 3, (MON, THU), 50.0),
            _i("butter", "butter", "kg", 0.02, 30, 2, (TUE, FRI), 2.5),
        ),
    ),
    RestaurantSpec(
        id="hana",
        name="Izakaya Hana",
        city="Tokyo (Ebisu)",
        time_zone="Asia/Tokyo",
        covers=28,
        cuisine="izakaya",
        owner="Hana",
        coastal=False,
        turns=2.2,
        tourist_weekend=1.1,
        summer=0.05,
        peak_day=NORTHERN_SUMMER,
        closed=(SUN,),
        devices=_watch_and_phone("Hana"),
        ingredients=(
            _i("tuna", "bluefin tuna (akami)", "kg", 0.04, 2, 1, MON_TO_SAT, 1.0, 0.22),
            _i("rice", "koshihikari rice", "kg", 0.12, 365, 3, (TUE, FRI), 10.0),
            _i("tofu", "tofu", "pcs", 0.15, 4, 1, MON_TO_SAT, 12.0),
            _i("shiitake", "shiitake", "kg", 0.015, 7, 2, (MON, THU), 1.0),
            _i("nori", "nori sheets", "pcs", 0.5, 365, 4, (WED,), 100.0),
            _i("sake", "sake", "l", 0.12, 365, 3, (TUE, FRI), 18.0),
            _i("yuzu", "yuzu", "kg", 0.005, 21, 3, (WED,), 1.0),
        ),
    ),
    RestaurantSpec(
        id="daniel",
        name="Red Hook Smoke House",
        city="New York (Brooklyn)",
        time_zone="America/New_York",
        covers=80,
        cuisine="barbecue",
        owner="Daniel",
        coastal=False,
        turns=1.6,
        tourist_weekend=1.2,
        summer=0.1,
        peak_day=NORTHERN_SUMMER,
        closed=(MON,),
        devices=_watch_and_phone("Daniel"),
        ingredients=(
            _i("brisket", "brisket", "kg", 0.12, 10, 3, (TUE, FRI), 6.0),
            _i("pork-shoulder", "pork shoulder", "kg", 0.08, 7, 3, (TUE, FRI), 4.0),
            _i("cornmeal", "cornmeal", "kg", 0.03, 180, 4, (WED,), 10.0),
            _i("cabbage", "green cabbage", "kg", 0.05, 21, 2, (TUE, THU, SAT), 10.0),
            _i("pickles", "pickles", "kg", 0.02, 90, 4, (WED,), 4.0),
            _i("ipa", "IPA (keg)", "l", 0.3, 90, 3, (TUE, FRI), 58.0),
            _i(
                "buns", "brioche buns", "pcs", 0.5, 2, 1, (TUE, WED, THU, FRI, SAT, SUN), 24.0, 0.12
            ),
        ),
    ),
    RestaurantSpec(
        id="carmen",
        name="Cevichería La Ola",
        city="Lima (Miraflores)",
        time_zone="America/Lima",
        covers=48,
        cuisine="Peruvian cevichería",
        owner="Carmen",
        coastal=True,
        turns=2.0,
        tourist_weekend=1.25,
        summer=0.3,
        peak_day=SOUTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("Carmen"),
        ingredients=(
            _i("corvina", "corvina", "kg", 0.12, 2, 1, MON_TO_SAT, 2.0, 0.22),
            _i("limes", "limes", "kg", 0.06, 14, 1, (MON, WED, FRI), 5.0),
            _i("red-onion", "red onion", "kg", 0.04, 30, 2, (TUE, FRI), 10.0),
            _i("aji-amarillo", "ají amarillo", "kg", 0.008, 14, 2, (TUE, FRI), 1.0),
            _i("sweet-potato", "sweet potato (camote)", "kg", 0.06, 30, 2, (TUE, FRI), 10.0),
            _i("choclo", "choclo (Andean corn)", "kg", 0.05, 7, 2, (MON, THU), 5.0),
            _i("pisco", "pisco", "l", 0.04, 3650, 5, (WED,), 6.0),
        ),
    ),
    RestaurantSpec(
        id="olivia",
        name="Bondi Bay Fish Bar",
        city="Sydney (Bondi)",
        time_zone="Australia/Sydney",
        covers=60,
        cuisine="fish and chips",
        owner="Olivia",
        coastal=True,
        turns=2.3,
        tourist_weekend=1.3,
        summer=0.35,
        peak_day=SOUTHERN_SUMMER,
        closed=(),
        devices=_watch_and_phone("Olivia"),
        ingredients=(
            _i("barramundi", "barramundi", "kg", 0.1, 3, 1, MON_TO_SAT, 3.0),
            _i("prawns", "king prawns", "kg", 0.05, 3, 1, MON_TO_SAT, 2.0, 0.22),
            _i("potatoes", "potatoes", "kg", 0.18, 30, 2, (TUE, FRI), 20.0),
            _i("lemons", "lemons", "kg", 0.02, 14, 2, (TUE, FRI), 5.0),
            _i("oysters", "Sydney rock oysters", "pcs", 0.3, 5, 2, (TUE, THU, SAT), 48.0),
            _i("batter-mix", "beer batter mix", "kg", 0.03, 180, 4, (WED,), 10.0),
            _i("frying-oil", "frying oil", "l", 0.03, 180, 4, (WED,), 20.0),
        ),
    ),
    RestaurantSpec(
        id="priya",
        name="Konkan Coast Kitchen",
        city="Mumbai (Bandra)",
        time_zone="Asia/Kolkata",
        covers=70,
        cuisine="Konkan coastal",
        owner="Priya",
        coastal=True,
        turns=1.9,
        tourist_weekend=1.2,
        summer=0.2,
        peak_day=355,  # the dry, festive season, not the monsoon
        closed=(),
        devices=_phone("Priya"),
        ingredients=(
            _i("pomfret", "pomfret", "kg", 0.07, 2, 1, MON_TO_SAT, 2.0, 0.22),
            _i("prawns", "tiger prawns", "kg", 0.05, 2, 1, MON_TO_SAT, 2.0, 0.22),
            _i("basmati", "basmati rice", "kg", 0.1, 365, 3, (TUE, FRI), 25.0),
            _i("coconut-milk", "coconut milk", "l", 0.05, 180, 3, (TUE, FRI), 6.0),
            _i("curry-leaves", "curry leaves", "kg", 0.003, 7, 1, (MON, WED, FRI), 0.5),
            _i("paneer", "paneer", "kg", 0.03, 5, 1, MON_TO_SAT, 2.0),
            _i("kokum", "kokum", "kg", 0.003, 365, 5, (WED,), 1.0),
        ),
    ),
    RestaurantSpec(
        id="lars",
        name="Fjord & Flame",
        city="Oslo (Aker Brygge)",
        time_zone="Europe/Oslo",
        covers=36,
        cuisine="New Nordic",
        owner="Lars",
        coastal=True,
        turns=1.6,
        tourist_weekend=1.2,
        summer=0.2,
        peak_day=NORTHERN_SUMMER,
        closed=(MON,),
        devices=(
            DeviceSpec(name="Lars's Apple Watch", kind="watch"),
            DeviceSpec(name="Lars's iPhone", kind="phone"),
            # A phone he replaced: the gateway answers 410 Unregistered for it.
            DeviceSpec(name="Lars's old iPhone", kind="phone", registered=False),
        ),
        ingredients=(
            _i("cod", "skrei cod", "kg", 0.09, 3, 1, MON_TO_SAT, 3.0),
            _i("salmon", "salmon", "kg", 0.05, 4, 2, (TUE, THU, SAT), 3.0),
            _i("potatoes", "potatoes", "kg", 0.12, 30, 2, (TUE, FRI), 10.0),
            _i("rye-bread", "rye bread", "pcs", 0.12, 3, 1, MON_TO_SAT, 8.0, 0.12),
            _i("dill", "dill", "kg", 0.004, 5, 2, (TUE, FRI), 0.5),
            _i("aquavit", "aquavit", "l", 0.02, 3650, 5, (WED,), 4.2),
            _i("lingonberries", "lingonberries", "kg", 0.015, 180, 4, (WED,), 2.0),
        ),
    ),
)
