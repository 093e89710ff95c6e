"""How this seed's company works: shifts, desks, home working, leave, peaks, support.

Drawn per seed (after the habits of :mod:`molehunt.simulate.habits`, from the same
stream, so the shop and channel draws stay put): a night team working 20:00-08:00,
hot desks shared by several people in a day, VPN from home, a week of leave for
some, new hires, month- and quarter-end reporting peaks, IT staff logging on to
many colleagues' PCs, and a shared service-desk CRM account several agents use.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from molehunt.simulate.calendar import is_workday
from molehunt.simulate.company import DEPARTMENTS, Account, Company, Department, Person

#: Second octet of hot-desk and VPN addresses (not used by any department).
HOT_DESK_SUBNET = 31
VPN_SUBNET = 250
SERVICE_DESK_ACCOUNT = "svc.desk"


@dataclass(slots=True)
class Workforce:
    """The drawn working patterns (see the module docstring)."""

    night_team: int | None = None
    night_people: list[int] = field(default_factory=list)
    hot_desk_people: list[int] = field(default_factory=list)
    hot_desks: list[tuple[str, str]] = field(default_factory=list)  # (host, ip)
    hot_desk_day_chance: float = 0.0
    vpn_people: dict[int, float] = field(default_factory=dict)  # person -> chance a day
    vpn_style: str = "laptop"  # "laptop": the VPN address; "rdp": RDP to one's own PC
    leave_weeks: dict[int, date] = field(default_factory=dict)
    new_hires: list[int] = field(default_factory=list)
    peak_days: dict[date, float] = field(default_factory=dict)
    peak_roles: tuple[str, ...] = ()
    it_visits: float = 0.0  # remote logons to colleagues' PCs a day, per IT engineer
    desk_users: dict[int, float] = field(default_factory=dict)  # person -> share of actions
    desk_owner: str = ""
    #: Transfers and role changes: (day, person, new department); HR exports a new
    #: version of the roster on each such day.
    transfers: list[tuple[date, int, Department]] = field(default_factory=list)
    employee_ids: dict[int, str] = field(default_factory=dict)  # of the people moved

    def peak(self, day: date, role: str) -> float:
        return self.peak_days.get(day, 1.0) if role in self.peak_roles else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "night_shift": {"team": self.night_team, "people": len(self.night_people)},
            "hot_desks": {
                "people": len(self.hot_desk_people),
                "desks": len(self.hot_desks),
                "day_chance": round(self.hot_desk_day_chance, 3),
            },
            "vpn": {"people": len(self.vpn_people), "style": self.vpn_style},
            "leave_weeks": len(self.leave_weeks),
            "new_hires_in_period": len(self.new_hires),
            "reporting_peaks": {
                "roles": list(self.peak_roles),
                "days": {d.isoformat(): round(f, 2) for d, f in sorted(self.peak_days.items())},
            },
            "it_remote_logons_per_day": round(self.it_visits, 2),
            "transfers": [
                {"day": d.isoformat(), "person": self.employee_ids[i], "to": dept.role}
                for d, i, dept in self.transfers
            ],
            "service_desk_account": {
                "account": SERVICE_DESK_ACCOUNT if self.desk_users else None,
                "users": len(self.desk_users),
            },
        }


def draw_workforce(rng: random.Random, company: Company) -> Workforce:
    """Draw the working patterns, and apply those that change the company (hires,
    leave, the night team's hours, the service-desk account)."""
    w = Workforce()
    days = [company.start + timedelta(days=i) for i in range((company.end - company.start).days)]
    workdays = [d for d in days if is_workday(d)]
    staff = [p for p in company.people if p.host]
    rank_and_file = [
        p
        for p in staff
        if p.title not in ("Department Head", "Team Lead")
        and p.hire_date < company.start
        and p.notice_date is None
    ]
    # A night team (customer service or claims) working 20:00-08:00.
    if rng.random() < 0.6:
        teams = sorted(
            {p.team for p in staff if p.role in ("cs", "claims") and p.title != "Department Head"}
        )
        if teams:
            w.night_team = rng.choice(teams)
            for p in staff:
                if p.team == w.night_team:
                    p.arrive = rng.gauss(19.9, 0.15)
                    p.leave = rng.gauss(32.0, 0.2)
                    w.night_people.append(p.index)
    night = set(w.night_people)
    # Hot desks: some sales and service staff sit wherever there is a free desk.
    share = rng.choice((0.0, rng.uniform(0.05, 0.3)))
    desk_staff = [p for p in rank_and_file if p.role in ("sales", "cs") and p.index not in night]
    w.hot_desk_people = sorted(p.index for p in desk_staff if rng.random() < share)
    if w.hot_desk_people:
        n = max(1, round(len(w.hot_desk_people) * rng.uniform(0.5, 0.9)))
        w.hot_desks = [
            (f"HD-{k + 1:03d}", f"10.{HOT_DESK_SUBNET}.{k // 200}.{k % 200 + 20}") for k in range(n)
        ]
        w.hot_desk_day_chance = rng.uniform(0.4, 1.0)
    # VPN from home.
    vpn_share = rng.uniform(0.0, 0.4)
    w.vpn_style = rng.choice(("laptop", "rdp"))
    for p in staff:
        if p.index not in night and rng.random() < vpn_share:
            w.vpn_people[p.index] = rng.uniform(0.05, 0.4)
    # A week of leave for some.
    week_share = rng.uniform(0.0, 0.25)
    for p in staff:
        if rng.random() < week_share and len(workdays) > 5:
            first = rng.randrange(len(workdays) - 5)
            w.leave_weeks[p.index] = workdays[first]
            p.leave_days.update(workdays[first : first + 5])
    # New hires in the period (beyond the few every company has).
    hire_share = rng.uniform(0.0, 0.05)
    span = (company.end - company.start).days
    hired: dict[str, date] = {}
    for p in rank_and_file:
        if p.index not in night and rng.random() < hire_share and span > 8:
            p.hire_date = company.start + timedelta(days=rng.randint(3, span - 5))
            hired[p.employee_id] = p.hire_date
            w.new_hires.append(p.index)
    company.accounts = [
        Account(a.account, a.system, a.owner, a.kind, hired[a.owner], a.disabled)
        if a.owner in hired and a.kind == "human"
        else a
        for a in company.accounts
    ]
    # Month- and quarter-end reporting: the last three working days of each month.
    month_end = rng.uniform(1.2, 2.5)
    quarter_end = rng.uniform(1.0, 1.6)
    for k, d in enumerate(workdays):
        later = [x for x in workdays[k + 1 :] if x.month == d.month]
        month_last = (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if len(later) < 3 and month_last <= workdays[-1] + timedelta(days=7):
            w.peak_days[d] = month_end * (quarter_end if d.month in (3, 6, 9, 12) else 1.0)
    w.peak_roles = tuple(
        ["analyst", "manager"]
        + [r for r in ("audit", "claims", "underwriter", "sales") if rng.random() < 0.5]
    )
    w.it_visits = rng.uniform(0.5, 8.0)
    # A shared CRM login of the service desk, known and entitled, used by several agents.
    if rng.random() < 0.7:
        cs_teams: dict[int, list[Person]] = {}
        for p in staff:
            if p.role == "cs" and p.index not in night:
                cs_teams.setdefault(p.team, []).append(p)
        if cs_teams:
            team = cs_teams[rng.choice(sorted(cs_teams))]
            lead = next((p for p in team if p.title == "Team Lead"), team[0])
            users = [p for p in team if p.index in {q.index for q in rank_and_file}]
            for p in rng.sample(users, min(len(users), rng.randint(3, 6))):
                w.desk_users[p.index] = rng.uniform(0.2, 0.8)
            if w.desk_users:
                w.desk_owner = lead.employee_id
                company.accounts.append(
                    Account(
                        SERVICE_DESK_ACCOUNT,
                        "crm-app",
                        lead.employee_id,
                        "shared",
                        company.start - timedelta(days=900),
                        None,
                    )
                )
    # Transfers and role changes in the middle of the period.
    moves = {"sales": "cs", "cs": "sales", "claims": "underwriter", "underwriter": "claims"}
    movable = [
        p
        for p in rank_and_file
        if p.role in moves
        and p.index not in night
        and p.index not in w.desk_users
        and p.index not in set(w.hot_desk_people)
        and p.index not in set(w.new_hires)
    ]
    share = rng.uniform(0.0, 0.04)
    if len(workdays) > 6:
        for p in movable:
            if rng.random() < share:
                day = workdays[rng.randrange(len(workdays) // 4, len(workdays) * 3 // 4)]
                target = next(d for d in DEPARTMENTS if d.role == moves[p.role])
                w.transfers.append((day, p.index, target))
                w.employee_ids[p.index] = p.employee_id
    w.transfers.sort(key=lambda t: (t[0], t[1]))
    return w


def transfer(company: Company, w: Workforce, day: date) -> bool:
    """Apply the transfers of ``day`` to the people; whether there were any."""
    moved = False
    for when, index, dept in w.transfers:
        if when == day:
            p = company.people[index]
            head = next(
                (
                    q
                    for q in company.people
                    if q.department == dept and q.title == "Department Head"
                ),
                None,
            )
            p.department, p.role, p.title = dept, dept.role, dept.title
            p.manager = head.index if head else p.manager
            moved = True
    return moved


def seats(
    rng: random.Random, w: Workforce, present: list[Person]
) -> dict[int, tuple[str, str, int]]:
    """Today's hot desks: person -> (host, ip, half) with half 0 = the whole day,
    1 = the morning, 2 = the afternoon (two people share a desk)."""
    sitting = [p for p in present if rng.random() < w.hot_desk_day_chance]
    rng.shuffle(sitting)
    out: dict[int, tuple[str, str, int]] = {}
    n = len(w.hot_desks)
    for k, p in enumerate(sitting[: 2 * n]):
        host, ip = w.hot_desks[k % n]
        shared = len(sitting) > n + (k % n)
        out[p.index] = (host, ip, (1 if k < n else 2) if shared else 0)
    return out


def vpn_address(person: Person, day: date) -> str:
    """The address the VPN gave this person today."""
    k = (person.index * 7 + day.toordinal()) % 60000
    return f"10.{VPN_SUBNET}.{k // 240}.{k % 240 + 10}"
