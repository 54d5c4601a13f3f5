"""Build the simulator's name data (``names.csv``) from curated lists and Faker's locale lists.

Run when a list changes: ``uv run python -m hospital.simulator.data.build_names``.
The output is committed package data, so the simulator never depends on Faker's lists at run time
and the same seed gives the same bytes whatever Faker version is installed.

Sources, per population group (shares of each group's weight mass in ``_COMPONENTS``):
- curated South African lists (below; the most common names first, from birth-register and
  voter-roll top-name lists as published in the press, rounded to ranks);
- Faker ``zu_ZA`` (isiZulu first names and surnames), ``en_US`` (first and last names with
  Census frequencies, square-rooted), ``en_GB`` (first names; surnames with weights),
  ``en_IN`` (Indian first names and surnames).
Lists without frequencies get Zipf weights by rank, ``(rank + 20) ** -0.7``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from faker.providers.person.en_GB import Provider as EnGB
from faker.providers.person.en_IN import Provider as EnIN
from faker.providers.person.en_US import Provider as EnUS
from faker.providers.person.zu_ZA import Provider as ZuZA

OUT = Path(__file__).with_name("names.csv")
GROUPS = ("Black African", "White", "Coloured", "Indian/Asian")


def _words(text: str) -> list[str]:
    return text.split()


def _bar(text: str) -> list[str]:
    return [part.strip() for part in text.split("|") if part.strip()]


CURATED_FEMALE: dict[str, tuple[str, ...]] = {
    "Black African": (
        "Thandiwe",
        "Nomvula",
        "Lerato",
        "Palesa",
        "Zanele",
        "Nokuthula",
        "Sibongile",
        "Ayanda",
        "Thembi",
        "Naledi",
        "Boitumelo",
        "Dineo",
        "Refilwe",
        "Mpho",
        "Lindiwe",
        "Busisiwe",
        "Nandi",
        "Khanyisile",
        "Zodwa",
        "Precious",
        "Nompumelelo",
        "Kgomotso",
        "Tshepiso",
        "Ntombi",
        "Lungile",
        "Hlengiwe",
        "Mbali",
        "Zinhle",
        "Puleng",
        "Masego",
        "Keabetswe",
        "Thato",
        "Nosipho",
        "Onalenna",
        "Rethabile",
        "Amahle",
        "Lesedi",
        "Khensani",
        "Tsakani",
        "Rudzani",
        "Mulalo",
        "Nthabiseng",
        "Gugu",
        "Bontle",
        "Unathi",
        "Siphesihle",
    ),
    "White": (
        "Anna",
        "Elize",
        "Marietjie",
        "Susan",
        "Karin",
        "Annelie",
        "Chantel",
        "Michelle",
        "Nicole",
        "Jessica",
        "Lauren",
        "Megan",
        "Carla",
        "Ilse",
        "Sonja",
        "Riana",
        "Liezl",
        "Elmarie",
        "Charlotte",
        "Emma",
        "Mia",
        "Sarah",
        "Hannah",
        "Catherine",
    ),
    "Coloured": (
        "Chantelle",
        "Natasha",
        "Shireen",
        "Denise",
        "Bernadette",
        "Charmaine",
        "Nadia",
        "Lee-Ann",
        "Monique",
        "Tasneem",
        "Fatima",
        "Candice",
        "Jo-Anne",
        "Rochelle",
        "Zoe",
    ),
    "Indian/Asian": (
        "Priya",
        "Anusha",
        "Kavitha",
        "Nirvana",
        "Shanthi",
        "Reshma",
        "Ayesha",
        "Fatima",
        "Zainab",
        "Deshnee",
        "Sharmila",
        "Trisha",
        "Yusra",
        "Kiara",
        "Shreya",
    ),
}

CURATED_MALE: dict[str, tuple[str, ...]] = {
    "Black African": (
        "Sipho",
        "Thabo",
        "Bongani",
        "Mandla",
        "Sibusiso",
        "Themba",
        "Kagiso",
        "Tshepo",
        "Lwazi",
        "Siyabonga",
        "Tebogo",
        "Lethabo",
        "Musa",
        "Vusi",
        "Jabulani",
        "Andile",
        "Lucky",
        "Thulani",
        "Katlego",
        "Neo",
        "Kabelo",
        "Mpho",
        "Lungisani",
        "Sizwe",
        "Xolani",
        "Zola",
        "Mthunzi",
        "Khaya",
        "Ofentse",
        "Tumelo",
        "Karabo",
        "Dumisani",
        "Nkosinathi",
        "Bheki",
        "Mxolisi",
        "Rendani",
        "Tshilidzi",
        "Hlulani",
        "Nhlanhla",
        "Lindani",
        "Junior",
        "Blessing",
        "Tiisetso",
        "Itumeleng",
    ),
    "White": (
        "Johan",
        "Pieter",
        "Willem",
        "Hendrik",
        "Jan",
        "Gert",
        "Francois",
        "Andre",
        "Michael",
        "David",
        "James",
        "Ruan",
        "Jaco",
        "Christo",
        "Dewald",
        "Stefan",
        "Riaan",
        "Marius",
        "Daniel",
        "Liam",
        "Ethan",
        "Matthew",
        "Wian",
        "Connor",
    ),
    "Coloured": (
        "Ashwin",
        "Clinton",
        "Shaun",
        "Jerome",
        "Brandon",
        "Ricardo",
        "Deon",
        "Ebrahim",
        "Reagan",
        "Marlon",
        "Cheslyn",
        "Ivan",
        "Faiek",
        "Nathan",
        "Keenan",
    ),
    "Indian/Asian": (
        "Rajesh",
        "Pravin",
        "Suresh",
        "Kiran",
        "Ashok",
        "Yusuf",
        "Imraan",
        "Mohammed",
        "Vikash",
        "Ravi",
        "Deven",
        "Nikhil",
        "Zaheer",
        "Ishaan",
        "Aryan",
    ),
}

CURATED_SURNAMES: dict[str, tuple[str, ...]] = {
    "Black African": (
        "Dlamini",
        "Nkosi",
        "Ndlovu",
        "Khumalo",
        "Mokoena",
        "Mahlangu",
        "Sithole",
        "Zulu",
        "Mthembu",
        "Ngcobo",
        "Buthelezi",
        "Mkhize",
        "Molefe",
        "Mabena",
        "Shabalala",
        "Masilela",
        "Mofokeng",
        "Nkuna",
        "Baloyi",
        "Maluleke",
        "Mathebula",
        "Radebe",
        "Mazibuko",
        "Tshabalala",
        "Modise",
        "Motaung",
        "Sibiya",
        "Ntuli",
        "Hlongwane",
        "Vilakazi",
        "Cele",
        "Gumede",
        "Mnisi",
        "Makhubela",
        "Chauke",
        "Netshitenzhe",
        "Mudau",
        "Ramaphosa",
        "Phiri",
        "Moloi",
        "Letsoalo",
        "Mokwena",
        "Tau",
        "Nxumalo",
        "Xaba",
        "Zwane",
        "Maseko",
        "Kekana",
        "Mabaso",
        "Sebola",
        "Mashaba",
        "Magagula",
        "Ngwenya",
        "Mbatha",
        "Shezi",
        "Mthethwa",
        "Madonsela",
    ),
    "White": (
        "van der Merwe",
        "Botha",
        "Pretorius",
        "Nel",
        "van Wyk",
        "Smit",
        "Venter",
        "du Plessis",
        "Fourie",
        "Coetzee",
        "Steyn",
        "Kruger",
        "Jacobs",
        "Joubert",
        "Swanepoel",
        "Smith",
        "Taylor",
        "Jones",
        "Brown",
        "Williams",
        "Muller",
        "Viljoen",
        "le Roux",
        "Erasmus",
    ),
    "Coloured": (
        "Adams",
        "Jacobs",
        "Hendricks",
        "Isaacs",
        "Petersen",
        "Williams",
        "Daniels",
        "Abrahams",
        "Arendse",
        "Davids",
        "Fortuin",
        "Johnson",
        "Solomons",
        "Booysen",
        "Cupido",
        "Samuels",
    ),
    "Indian/Asian": (
        "Naidoo",
        "Govender",
        "Pillay",
        "Moodley",
        "Reddy",
        "Chetty",
        "Singh",
        "Maharaj",
        "Patel",
        "Moosa",
        "Essop",
        "Khan",
        "Padayachee",
        "Ramsamy",
        "Bhana",
        "Desai",
    ),
}

EXTRA_FEMALE: dict[str, tuple[str, ...]] = {
    "Black African": tuple(
        _words(
            """Nonhlanhla Thulisile Nokwanda Sindisiwe Ntombifuthi Phindile Zandile Nombuso
        Nontobeko Lindelwa Nosipho Hlengiwe Khethiwe Sbongile Nomthandazo Thandeka Nolwazi
        Sinethemba Andiswa Asanda Anathi Zintle Siphokazi Nandipha Noluthando Nomsa Nomonde
        Ntombizodwa Duduzile
        Sizakele Gcinile Fikile Bongiwe Jabulile Mamello Mpumi Mpumelelo Nelisiwe Phumzile Qondile
        Sthembile Thobile Vuyiswa Wendy Xoliswa Yonela Zama Zanele Zethu Zinzi Bokang Dikeledi
        Dimakatso Keitumetso Kelebogile Lebogang Lineo Lerato Maki Malebo Mamokgethi Matshidiso
        Mmabatho Mmapula Moipone Mosa Motlalepule Nkele Ntswaki Obakeng Omphile Oratile Pontsho
        Pule Reitumetse Relebohile Seipati Tebello Thandi Tlotlo Tshegofatso Tumi Bakang Goitseone
        Kamogelo Masechaba Mmathapelo Neo Ofentse Tsholofelo Itumeleng Ipeleng Gontse Nkhensani
        Hlamalani Ntsako Rhulani Tintswalo Vutomi Nyiko Akani Azwinndini Fulufhelo Lufuno Mpfariseni
        Ndivhuwo Phathutshedzo Tshimangadzo Vhutshilo Khuliso Mashudu Precious Patience Blessing
        Grace Gift Mercy Faith Prudence Princess Beauty Queen Lucia Elizabeth Maria Martha Sarah
        Esther Ruth Rebecca Johanna Agnes Elsie Emily Joyce Lydia Margaret Rose Violet Portia
        Pretty Busi Nomhle Cebile Lwandle Minenhle Mbalenhle Simphiwe Snenhlanhla Olwethu Owami
        Luyanda Kwanele Langelihle Samkelisiwe Zenande Amogelang Reabetswe Oarabile Rorisang"""
        )
    ),
    "White": tuple(
        _words(
            """Adri Alta Amanda Anel Anika Anja Annemarie Antoinette Bernice Carien Charlene Chrisna
        Corlia Danelle Elana Elmien Elsabe Esme Estelle Hanlie Hester Ilze Ina Inge Jana Janine
        Johanna Juanita Karlien Lelani Lize Lizelle Madelein Magdalena Maryke Mariska Marlene
        Martie Melanie Mienkie Mina Nadia Natasha Nelia Petro Rene Rika Ronel Ronette Sanet Sandra
        Sune Talita Tanya Tersia Wilma Yolandi Zelda Zanele Elzette Heidi Carina Celeste"""
        )
    ),
    "Coloured": tuple(
        _words(
            """Abigail Amber Ashleigh Beverley Bronwyn Carmen Chante Crystal Desiree Ebony Fiona
        Gail Geraldine Jacqueline Janine Kim Leigh-Ann Lorraine Lynette Marcelle Mariam Melissa
        Merle Naeemah Nasreen Nicolette Noor Rozanne Ruwayda Sabrina Samantha Shanaaz Shannon
        Sharon Stacey Sumaya Tamia Taryn Toni Tracey Ursula Valencia Veronique Yolanda Zaida"""
        )
    ),
    "Indian/Asian": tuple(
        _words(
            """Anisha Ashika Bhavna Devina Dimple Geeta Hema Indira Jayshree Kamla Kavisha Keshni
        Kirsty Komala Kumari Lalitha Leela Meera Mishka Nalini Nerisha Nisha Pooja Prenisha
        Radha Rakhee Reshmi Rina Roshni Sadhana Samantha Saras Savitha Shamila Shantel Sherisha
        Sunitha Tanisha Thiroshni Vanessa Vasanthi Yashika Aisha Amina Farzana Fathima Halima
        Khadija Mariam Naseema Nazia Rashida Rukhsana Safiyya Shabnam Shireen Sumayya Yasmin"""
        )
    ),
}

EXTRA_MALE: dict[str, tuple[str, ...]] = {
    "Black African": tuple(
        _words(
            """Ayanda Bhekani Bonginkosi Cebo Dumisane Hlengiwe Jabu Khulekani Lindokuhle Lungelo
        Mbongeni Mduduzi Mfundo Mlungisi Mondli Mzwandile Nhlakanipho Njabulo Nkululeko Phila
        Phumlani Sabelo Sandile Sanele Sbusiso Sfiso Sibonelo Sifiso Simphiwe Siphiwe Sithembiso
        Thamsanqa Thembinkosi Thokozani Velaphi Vusumuzi Wandile Zakhele Zweli Zwelakhe Banele
        Bandile Khanyiso Lonwabo Luthando Lwandile Mzukisi Siyabulela Unathi Vuyani Xolisile
        Bafana Bokang Boitumelo Dikgang Gaolatlhe Goitsemang Kamohelo Kgosi Kgotso Khotso Lebogang
        Lefa Lesego Mahlatse Masilo Modise Mogomotsi Mosa Motheo Mpho Oarabile Obakeng Omphemetse
        Onkarabile Oratile Pule Rapula Rethabile Sello Tau Teboho Thapelo Thato Tlotlo Tsepo
        Tshegofatso Tumisang Amogelang Kamogelo Lehlohonolo Nthuthuko Hlayisani Khensani
        Ntsako Rhulani Tiyani Vongani Xikombiso Azwihangwisi Khathutshelo Mashudu Mpho Ndivhuwo
        Ndwamato Takalani Tshifhiwa Vhonani Gift Lucky Blessing Innocent Prince Godfrey Joseph
        John Peter Samuel Solomon Isaac Moses Daniel David Elias Abel Simon Petrus Johannes Jacob
        Stephen Patrick Richard George Frans Alfred Emmanuel Justice Given Happy Knowledge
        Goodness Trust Clever Wiseman Sydney Elvis Jeffrey Victor Collen Kenneth"""
        )
    ),
    "White": tuple(
        _words(
            """Adriaan Albert Altus Barend Bennie Bernard Carel Charl Cornelius Danie Deon Dirk
        Eben Eugene Frik Frikkie Gerhard Gideon Hannes Hennie Herman Izak Jacques Jannie Japie
        JP Jurie Kobus Koos Louis Louw Morne Neels Nico Pierre Quinton Rassie Reinhardt Schalk
        Sarel Stephanus Stiaan Theuns Tiaan Tjaart Vernon Werner Wikus Wouter Zander Heinrich
        Henk Ockert Petrus Ryno Juan Divan"""
        )
    ),
    "Coloured": tuple(
        _words(
            """Abdullah Adiel Allistair Andrew Anthony Aubrey Byron Calvin Carlo Cedric Charles
        Chester Colin Desmond Donovan Dylan Edward Ernest Errol Ferdinand Gavin Glen Graham
        Gregory Jason Jeremy Julian Kurt Leon Leroy Lester Lionel Mogamat Moegamat Nazeem
        Neville Ridwaan Rodney Ryan Shafiek Tashreeq Trevor Tyrone Waleed Wayne Yaseen Zaid"""
        )
    ),
    "Indian/Asian": tuple(
        _words(
            """Anand Anil Ashwin Bhavesh Deepak Dinesh Ganesh Hemant Jayesh Kamal Kevin Krishna
        Kumaren Logan Mahendra Manoj Naresh Navin Neelan Nitesh Pradeep Prakash Pranesh Prem
        Rajen Ramesh Ranjith Rishi Rohan Sanjay Satish Selvan Shiven Sunil Sunny Thiru Uday
        Vijay Vinesh Yuvan Abdul Ahmed Ebrahim Faizal Farouk Hassan Ismail Junaid Mahomed Moosa
        Omar Riaz Saleem Shaheen Yunus Zakir"""
        )
    ),
}

EXTRA_SURNAMES: dict[str, tuple[str, ...]] = {
    "Black African": tuple(
        _words(
            """Mokoena Molefe Mahlangu Mabena Masilela Mthembu Ngcobo Zulu Khumalo Ndlovu Mkhize
        Sithole Mthethwa Shabalala Nxumalo Buthelezi Hadebe Zungu Cele Ntuli Mazibuko Radebe
        Tshabalala Motaung Mofokeng Nhlapo Sibiya Maseko Makhubela Baloyi Chauke Mathebula
        Maluleke Ngobeni Shivambu Hlongwane Mabunda Rikhotso Nemukula Ramabulana Mudau
        Netshitenzhe Tshivhase Nevhutalu Mashamba Ramavhunga Molepo Mashaba Mokgadi Maponya
        Ramaphosa Seabi Sekgobela Moloi Mokoka Letsoalo Mphahlele Mogale Modiba Moagi Mokwena
        Phiri Tau Sebola Kekana Masemola Malatji Matlala Maake Lekganyane Ledwaba Magagula
        Mavuso Msimango Mnisi Mhlongo Gumede Majola Zwane Dube Shezi Ngema Mabaso Mbatha
        Mlambo Vilakazi Nkabinde Nene Mtshali Ngubane Xaba Biyela Khoza Mdlalose Mokone Thobejane
        Moabelo Mabuza Motloung Mokgothu Mosia Makhene Mahlaba Seleka Molapo Ramokgopa"""
        )
    ),
    "White": tuple(
        _bar(
            """van der Merwe|Botha|Pretorius|Nel|van Wyk|du Plessis|Smit|le Roux|Venter|Coetzee|
        Fourie|Steyn|Jacobs|Kruger|van Zyl|Joubert|Swanepoel|Potgieter|Erasmus|Marais|Viljoen|
        du Toit|Louw|Engelbrecht|Olivier|Visser|Meyer|Jansen van Rensburg|Snyman|Vermeulen|
        Bezuidenhout|Oosthuizen|Ferreira|Mostert|de Villiers|Nieuwoudt|Labuschagne|Burger|
        Strydom|Lombard|Hattingh|Grobler|Cilliers|Swart|de Jager|Theron|Roux|Human|Muller|
        van Niekerk|Rossouw|Vorster|Claassen|Badenhorst|Malan|Wessels|Kotze|Scholtz|van Heerden"""
        )
    ),
    "Coloured": tuple(
        _bar(
            """Adams|Petersen|Williams|Jacobs|Hendricks|Abrahams|Isaacs|Arendse|Davids|Fortuin|
        Booysen|Cupido|Daniels|Julies|Solomons|Samuels|Februarie|September|April|Kleinhans|
        Appollis|Titus|Baartman|Hartnick|Damons|Pietersen|Philander|Jantjies|Stuurman|Oktober|
        Lottering|Jephtha|van Rooyen|Cloete|Fredericks|Moses|Manuel|Bailey|Galant|Snyders"""
        )
    ),
    "Indian/Asian": tuple(
        _words(
            """Naidoo Pillay Govender Moodley Reddy Singh Chetty Padayachee Naicker Maharaj Ramdass
        Sewpersad Maharaj Moosa Essop Cassim Amod Bhayat Dawood Kajee Mayet Omar Hassim Jeena
        Parbhoo Patel Lalla Kistan Munsamy Perumal Rajoo Sookdeo Subramoney Thaver Vather
        Naidu Nair Ramsunder Haripersad Ramlall Gounden Appalsamy Maistry Ebrahim Joosub"""
        )
    ),
}


def _rank_weights(names: Iterable[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for rank, name in enumerate(dict.fromkeys(names)):
        out[name] = (rank + 20) ** -0.7
    return out


def _given_weights(weighted: Mapping[str, float]) -> dict[str, float]:
    # Square root of the US Census frequency: these names are a secondary pool in South Africa,
    # so their US top names (Michael, Smith) must not top South African lists.
    return {name: float(w) ** 0.5 for name, w in weighted.items()}


def _mix(parts: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    """Combine sources: each contributes ``share`` of the mass, split by its own weights."""
    out: dict[str, float] = {}
    for share, weights in parts:
        total = sum(weights.values())
        for name, w in weights.items():
            out[name] = out.get(name, 0.0) + share * w / total
    return out


def _zulu_surnames() -> list[str]:
    # Faker's zu_ZA surname list repeats entries and includes some given names; drop those.
    given = set(ZuZA.first_names_female) | set(ZuZA.first_names_male)
    return [n for n in dict.fromkeys(ZuZA.last_names) if n not in given]


def build() -> dict[tuple[str, str], dict[str, float]]:
    """(kind, group) -> {name: weight}; kind is female, male or surname."""
    us_f, us_m = _given_weights(EnUS.first_names_female), _given_weights(EnUS.first_names_male)
    out: dict[tuple[str, str], dict[str, float]] = {}
    for kind, curated, extra, faker_zu, us, gb in (
        ("female", CURATED_FEMALE, EXTRA_FEMALE, ZuZA.first_names_female, us_f,
         EnGB.first_names_female),
        ("male", CURATED_MALE, EXTRA_MALE, ZuZA.first_names_male, us_m, EnGB.first_names_male),
    ):  # fmt: skip
        indian = EnIN.first_names_female if kind == "female" else EnIN.first_names_male
        b = "Black African"
        out[(kind, b)] = _mix(
            [(0.75, _rank_weights([*curated[b], *extra[b], *faker_zu])), (0.25, us)]
        )
        w = "White"
        out[(kind, w)] = _mix(
            [(0.5, _rank_weights([*curated[w], *extra[w]])), (0.3, us), (0.2, _rank_weights(gb))]
        )
        c = "Coloured"
        out[(kind, c)] = _mix([(0.55, _rank_weights([*curated[c], *extra[c]])), (0.45, us)])
        i = "Indian/Asian"
        out[(kind, i)] = _mix(
            [(0.6, _rank_weights([*curated[i], *extra[i]])), (0.4, _rank_weights(indian))]
        )
    us_s = _given_weights(EnUS.last_names)
    s = CURATED_SURNAMES
    x = EXTRA_SURNAMES
    b, w, c, i = GROUPS
    out[("surname", b)] = _mix(
        [(0.6, _rank_weights([*s[b], *x[b]])), (0.4, _rank_weights(_zulu_surnames()))]
    )
    out[("surname", w)] = _mix(
        [
            (0.55, _rank_weights([*s[w], *x[w]])),
            (0.3, us_s),
            (0.15, _given_weights(EnGB.last_names)),
        ]
    )
    out[("surname", c)] = _mix([(0.7, _rank_weights([*s[c], *x[c]])), (0.3, us_s)])
    out[("surname", i)] = _mix(
        [(0.65, _rank_weights([*s[i], *x[i]])), (0.35, _rank_weights(EnIN.last_names))]
    )
    return out


def write(path: Path = OUT) -> None:
    """One row per (kind, group, name), most frequent first, weights per million of the list."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["kind", "population_group", "name", "weight"])
        for (kind, group), weights in build().items():
            for name, weight in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
                out.writerow([kind, group, name, f"{weight * 1e6:.3f}"])


if __name__ == "__main__":
    write()
