"""Per-ICB constants for the synthetic panel generator (derived once from the real NHS files).

Derived by ``benchmarks/calibrate_synthetic.py --emit-icb-table`` from the FY 2021/22 (year 2022)
NHS Payments to General Practice file, the CCG/sub-ICB -> ICB lookup and the OHID Fingertips
practice deprivation scores (IMD 2019, indicator 93553).  Each row holds the ICB code and name, the
number of practices in year 2022, the median registered list size, the sub-ICB (CCG) codes in use
that year and quantiles of the practice IMD 2019 score at probabilities :data:`IMD_PROBS`
(the generator samples practice IMD scores from the piecewise-linear quantile function).
No real data are read at run time.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class IcbRow(NamedTuple):
    """One ICB: code, name, practices (2022), median list size, sub-ICB codes, IMD quantiles."""

    code: str
    name: str
    n_practices: int
    median_list: float
    sub_icbs: tuple[str, ...]
    imd_quantiles: tuple[float, ...]


IMD_PROBS: Final = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

ICB_ROWS: Final[tuple[IcbRow, ...]] = (
    IcbRow(
        "QE1",
        "NHS Lancashire and South Cumbria Integrated Care Board",
        201,
        7993,
        ("00Q", "00R", "00X", "01A", "01E", "01K", "02G", "02M"),
        (6.7, 10.8, 11.8, 13.6, 16.7, 20.7, 24.7, 30.9, 34.4, 38.2, 42.8, 46.4, 62.9),
    ),
    IcbRow(
        "QF7",
        "NHS South Yorkshire Integrated Care Board",
        175,
        7858,
        ("02P", "02X", "03L", "03N"),
        (4.5, 10.7, 15.8, 19.5, 23.0, 26.5, 30.2, 32.5, 36.5, 40.5, 45.9, 50.5, 55.4),
    ),
    IcbRow(
        "QGH",
        "NHS Herefordshire and Worcestershire Integrated Care Board",
        80,
        9471,
        ("18C",),
        (5.4, 9.6, 11.6, 14.7, 16.3, 17.0, 18.0, 18.5, 20.0, 21.7, 24.7, 26.6, 32.7),
    ),
    IcbRow(
        "QH8",
        "NHS Mid and South Essex Integrated Care Board",
        150,
        6709,
        ("06Q", "07G", "99E", "99F", "99G"),
        (6.6, 8.0, 9.6, 11.3, 12.7, 14.4, 16.4, 17.9, 22.5, 27.4, 32.9, 36.6, 41.4),
    ),
    IcbRow(
        "QHG",
        "NHS Bedfordshire, Luton and Milton Keynes Integrated Care Board",
        96,
        10346,
        ("M1J4Y",),
        (6.3, 8.8, 9.6, 11.1, 12.4, 16.5, 18.3, 20.2, 23.8, 26.0, 29.2, 30.5, 41.0),
    ),
    IcbRow(
        "QHL",
        "NHS Birmingham and Solihull Integrated Care Board",
        161,
        6035,
        ("15E",),
        (5.4, 13.5, 19.3, 27.6, 32.6, 36.5, 40.3, 44.6, 46.6, 49.5, 51.1, 52.6, 56.2),
    ),
    IcbRow(
        "QHM",
        "NHS North East and North Cumbria Integrated Care Board",
        359,
        7483,
        ("00L", "00N", "00P", "01H", "13T", "16C", "84H", "99C"),
        (8.5, 11.7, 14.2, 18.3, 21.0, 24.4, 27.2, 30.3, 33.3, 35.8, 40.3, 44.6, 67.4),
    ),
    IcbRow(
        "QJ2",
        "NHS Derby and Derbyshire Integrated Care Board",
        112,
        8937,
        ("15M",),
        (6.4, 8.0, 10.1, 12.2, 14.2, 18.0, 20.4, 22.5, 24.4, 27.3, 31.6, 35.0, 42.1),
    ),
    IcbRow(
        "QJG",
        "NHS Suffolk and North East Essex Integrated Care Board",
        94,
        9641,
        ("06L", "06T", "07K"),
        (7.2, 10.5, 11.8, 13.4, 14.2, 15.1, 15.9, 18.2, 20.1, 22.8, 28.8, 36.4, 48.2),
    ),
    IcbRow(
        "QJK",
        "NHS Devon Integrated Care Board",
        123,
        8494,
        ("15N",),
        (7.8, 10.6, 12.2, 13.8, 15.1, 16.5, 18.0, 20.2, 23.1, 25.7, 32.8, 36.3, 54.3),
    ),
    IcbRow(
        "QJM",
        "NHS Lincolnshire Integrated Care Board",
        85,
        8185,
        ("71E",),
        (7.6, 9.4, 10.1, 13.2, 14.9, 17.5, 18.4, 21.1, 23.2, 25.3, 29.6, 37.0, 46.6),
    ),
    IcbRow(
        "QK1",
        "NHS Leicester, Leicestershire and Rutland Integrated Care Board",
        132,
        7952,
        ("03W", "04C", "04V"),
        (5.9, 8.1, 9.1, 10.6, 12.7, 14.3, 16.7, 21.7, 26.5, 29.6, 33.0, 38.3, 48.8),
    ),
    IcbRow(
        "QKK",
        "NHS South East London Integrated Care Board",
        203,
        9110,
        ("72Q",),
        (6.8, 9.1, 10.8, 14.7, 20.8, 22.5, 23.9, 25.8, 27.8, 29.2, 30.7, 32.4, 41.4),
    ),
    IcbRow(
        "QKS",
        "NHS Kent and Medway Integrated Care Board",
        197,
        9081,
        ("91Q",),
        (6.5, 9.9, 11.4, 13.3, 15.1, 16.8, 19.3, 21.1, 23.1, 26.0, 31.5, 39.3, 46.8),
    ),
    IcbRow(
        "QM7",
        "NHS Hertfordshire and West Essex Integrated Care Board",
        136,
        10967,
        ("06K", "06N", "07H"),
        (4.4, 6.3, 7.8, 8.4, 9.7, 11.0, 12.9, 14.2, 17.0, 18.6, 20.9, 23.3, 27.0),
    ),
    IcbRow(
        "QMF",
        "NHS North East London Integrated Care Board",
        276,
        7384,
        ("A3A8R",),
        (7.0, 11.3, 14.3, 19.3, 22.6, 26.4, 28.1, 29.1, 30.6, 31.9, 34.0, 35.2, 40.4),
    ),
    IcbRow(
        "QMJ",
        "NHS North Central London Integrated Care Board",
        183,
        8309,
        ("93C",),
        (7.8, 12.0, 12.9, 15.2, 17.3, 20.2, 23.5, 26.4, 29.5, 31.8, 34.1, 36.4, 41.4),
    ),
    IcbRow(
        "QMM",
        "NHS Norfolk and Waveney Integrated Care Board",
        105,
        8710,
        ("26A",),
        (8.8, 10.9, 12.8, 15.9, 17.0, 19.7, 20.8, 22.4, 23.8, 25.0, 29.7, 38.1, 50.3),
    ),
    IcbRow(
        "QNC",
        "NHS Staffordshire and Stoke-on-Trent Integrated Care Board",
        147,
        7430,
        ("04Y", "05D", "05G", "05Q", "05V", "05W"),
        (7.3, 10.3, 11.6, 13.5, 15.5, 17.5, 19.1, 20.9, 24.1, 29.2, 37.8, 40.9, 48.4),
    ),
    IcbRow(
        "QNQ",
        "NHS Frimley Integrated Care Board",
        72,
        10143,
        ("D4U1Y",),
        (4.2, 4.7, 5.5, 7.1, 7.9, 9.3, 11.3, 13.0, 15.2, 20.7, 23.5, 24.1, 28.5),
    ),
    IcbRow(
        "QNX",
        "NHS Sussex Integrated Care Board",
        168,
        10499,
        ("09D", "70F", "97R"),
        (6.0, 7.9, 9.0, 10.6, 12.9, 14.4, 16.0, 19.3, 21.4, 24.9, 29.6, 36.0, 46.0),
    ),
    IcbRow(
        "QOC",
        "NHS Shropshire, Telford and Wrekin Integrated Care Board",
        52,
        8221,
        ("M2L0M",),
        (10.6, 11.6, 11.9, 14.2, 15.4, 16.9, 18.6, 19.3, 20.1, 21.9, 26.0, 34.8, 46.9),
    ),
    IcbRow(
        "QOP",
        "NHS Greater Manchester Integrated Care Board",
        434,
        6371,
        ("00T", "00V", "00Y", "01D", "01G", "01W", "01Y", "02A", "02H", "14L"),
        (5.6, 11.4, 15.0, 22.0, 25.5, 29.3, 32.0, 35.8, 39.9, 43.9, 48.1, 50.6, 62.1),
    ),
    IcbRow(
        "QOQ",
        "NHS Humber and North Yorkshire Integrated Care Board",
        181,
        7810,
        ("02Y", "03F", "03H", "03K", "03Q", "42D"),
        (4.9, 8.3, 10.2, 11.7, 12.5, 14.5, 19.0, 24.4, 29.2, 34.9, 44.2, 47.7, 62.9),
    ),
    IcbRow(
        "QOX",
        "NHS Bath and North East Somerset, Swindon and Wiltshire Integrated Care Board",
        91,
        9510,
        ("92G",),
        (6.6, 8.9, 9.7, 10.5, 11.7, 12.0, 13.0, 14.2, 15.2, 16.1, 20.7, 23.6, 34.6),
    ),
    IcbRow(
        "QPM",
        "NHS Northamptonshire Integrated Care Board",
        68,
        10925,
        ("78H",),
        (7.1, 7.8, 8.8, 10.8, 13.2, 16.5, 19.4, 21.3, 22.9, 25.3, 29.6, 31.4, 33.1),
    ),
    IcbRow(
        "QR1",
        "NHS Gloucestershire Integrated Care Board",
        72,
        8278,
        ("11M",),
        (6.0, 7.4, 9.0, 10.1, 11.8, 12.7, 13.7, 15.4, 17.2, 19.0, 20.6, 24.7, 37.8),
    ),
    IcbRow(
        "QRL",
        "NHS Hampshire and Isle of Wight Integrated Care Board",
        147,
        11757,
        ("10R", "D9Y0V"),
        (5.0, 7.2, 8.4, 9.7, 11.4, 12.7, 14.6, 16.7, 22.0, 26.4, 28.8, 33.4, 38.2),
    ),
    IcbRow(
        "QRV",
        "NHS North West London Integrated Care Board",
        350,
        6736,
        ("W2U3Z",),
        (7.2, 11.6, 13.3, 16.0, 18.2, 20.5, 22.0, 23.0, 25.0, 26.7, 30.1, 32.5, 42.1),
    ),
    IcbRow(
        "QSL",
        "NHS Somerset Integrated Care Board",
        65,
        7653,
        ("11X",),
        (9.8, 13.0, 13.9, 14.8, 15.8, 17.0, 17.8, 18.4, 20.5, 23.0, 25.5, 26.8, 28.4),
    ),
    IcbRow(
        "QT1",
        "NHS Nottingham and Nottinghamshire Integrated Care Board",
        131,
        7674,
        ("02Q", "52R"),
        (6.3, 7.5, 9.6, 14.8, 18.3, 21.0, 24.4, 28.2, 31.6, 36.1, 40.9, 44.1, 48.1),
    ),
    IcbRow(
        "QT6",
        "NHS Cornwall and the Isles of Scilly Integrated Care Board",
        58,
        8706,
        ("11N",),
        (12.1, 16.4, 17.7, 18.9, 19.6, 20.7, 22.3, 24.2, 24.8, 26.4, 28.7, 31.3, 35.0),
    ),
    IcbRow(
        "QU9",
        "NHS Buckinghamshire, Oxfordshire and Berkshire West Integrated Care Board",
        159,
        10828,
        ("10Q", "14Y", "15A"),
        (3.4, 5.2, 6.0, 7.2, 8.4, 9.6, 10.3, 11.7, 13.6, 15.6, 20.0, 21.5, 31.9),
    ),
    IcbRow(
        "QUA",
        "NHS Black Country Integrated Care Board",
        207,
        5654,
        ("D2P2L",),
        (6.3, 16.0, 18.8, 26.2, 29.5, 33.2, 35.9, 37.7, 39.5, 41.3, 43.8, 46.9, 52.3),
    ),
    IcbRow(
        "QUE",
        "NHS Cambridgeshire and Peterborough Integrated Care Board",
        85,
        10440,
        ("06H",),
        (5.2, 7.5, 8.4, 9.4, 9.8, 11.6, 13.3, 14.9, 19.4, 23.5, 29.8, 33.9, 38.3),
    ),
    IcbRow(
        "QUY",
        "NHS Bristol, North Somerset and South Gloucestershire Integrated Care Board",
        78,
        11384,
        ("15C",),
        (6.8, 8.1, 9.5, 10.6, 11.4, 12.8, 19.9, 23.6, 26.5, 31.3, 40.6, 47.3, 60.0),
    ),
    IcbRow(
        "QVV",
        "NHS Dorset Integrated Care Board",
        78,
        9256,
        ("11J",),
        (6.6, 8.6, 10.3, 12.4, 14.0, 14.5, 15.7, 16.2, 18.0, 19.6, 23.8, 28.7, 32.1),
    ),
    IcbRow(
        "QWE",
        "NHS South West London Integrated Care Board",
        181,
        8442,
        ("36L",),
        (6.1, 8.2, 8.7, 10.3, 12.1, 13.3, 14.4, 17.2, 20.3, 23.3, 27.2, 29.7, 36.5),
    ),
    IcbRow(
        "QWO",
        "NHS West Yorkshire Integrated Care Board",
        285,
        8539,
        ("02T", "03R", "15F", "36J", "X2C4Y"),
        (6.7, 11.3, 13.1, 17.4, 21.7, 26.2, 30.2, 33.2, 36.4, 41.3, 48.5, 50.5, 58.9),
    ),
    IcbRow(
        "QWU",
        "NHS Coventry and Warwickshire Integrated Care Board",
        122,
        7636,
        ("B2M3M",),
        (7.3, 10.2, 10.9, 12.5, 14.1, 15.4, 18.7, 22.4, 25.0, 27.7, 36.7, 39.3, 50.6),
    ),
    IcbRow(
        "QXU",
        "NHS Surrey Heartlands Integrated Care Board",
        104,
        10474,
        ("92A",),
        (4.8, 5.5, 6.2, 7.3, 8.4, 9.1, 10.1, 10.7, 11.6, 13.2, 14.5, 18.0, 24.7),
    ),
    IcbRow(
        "QYG",
        "NHS Cheshire and Merseyside Integrated Care Board",
        354,
        6722,
        ("01F", "01J", "01T", "01V", "01X", "02E", "12F", "27D", "99A"),
        (4.6, 9.8, 12.7, 16.3, 19.8, 24.2, 29.3, 34.5, 39.1, 48.4, 55.2, 58.2, 68.7),
    ),
)


ICB_BY_CODE: Final[dict[str, IcbRow]] = {row.code: row for row in ICB_ROWS}
