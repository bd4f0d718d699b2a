"""The demo catalog: who makes what where in TTS (static facts, readable as a table).

Why static: the businesses, their products and prices are what a visitor of the demo
reads, so they are written out here; the random parts (NIB, NIK, phones, dates) come
from the seeded generator (:mod:`engine.demo.generator`) so this table stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.demo.dataset import Flaw, Season
from engine.models import Category


@dataclass(frozen=True)
class ProductSpec:
    """One product as the catalog states it (``complete`` False: no photo, no description)."""

    name: str
    category: Category
    price: int
    description: str
    certifications: tuple[str, ...] = ()
    in_stock: bool = True
    complete: bool = True


@dataclass(frozen=True)
class BusinessSpec:
    """One business as the catalog states it (``flaw``: see :data:`engine.demo.dataset.FLAWS`)."""

    key: str
    name: str
    owner: str
    female: bool
    kecamatan: str
    desa: str
    street: str
    group: str | None
    sales: int
    season: Season
    popularity: float
    products: tuple[ProductSpec, ...]
    flaw: Flaw | None = None
    email: str | None = None


# Short names keep the table below readable.
_P = ProductSpec
_B = BusinessSpec
_K = Category.kerajinan_tangan
_M = Category.makanan_olahan
_BINAAN_TENUN = "Kelompok Tenun Binaan Dinas 2024"
_BINAAN_PANGAN = "Program Pendampingan Digital UMKM Pangan 2025"
_BINAAN_MADU = "Klaster Madu Hutan Mutis"

CATALOG: tuple[BusinessSpec, ...] = (
    _B("tenun-niki-niki", "Tenun Ikat Lopo Niki-Niki", "Yuliana Tefa", True, "53.02.05",
       "Niki-Niki", "Jl. Timor Raya, RT 03 RW 02", _BINAAN_TENUN, 420_000_000, "tenun", 1.4, (
        _P("Selimut Tenun Ikat Motif Kaif Amanuban", _K, 1_450_000,
           "Selimut (mau) tenun ikat pewarna alami akar mengkudu dan tarum, motif kaif khas "
           "Amanuban, ukuran 180 x 120 cm. Dikerjakan tangan sekitar 2 bulan."),
        _P("Sarung Tenun Buna Amanuban", _K, 950_000,
           "Sarung (tais) tenun buna dengan benang berwarna, motif belah ketupat Amanuban, "
           "150 x 65 cm."),
        _P("Selendang Tenun Ikat Merah Amanuban", _K, 275_000,
           "Selendang tenun ikat dominan merah marun, 200 x 35 cm, cocok untuk acara adat "
           "dan oleh-oleh."),
        _P("Tas Selempang Tenun Ikat", _K, 185_000,
           "Tas selempang berbahan kain tenun ikat sisa produksi, lapisan dalam kain katun, "
           "resleting YKK.", in_stock=False),
    )),
    _B("sotis-amanatun", "Sanggar Tenun Sotis Amanatun", "Agustina Benu", True, "53.02.08",
       "Oinlasi", "Jl. Pasar Oinlasi No. 5", _BINAAN_TENUN, 310_000_000, "tenun", 1.1, (
        _P("Kain Tenun Sotis Amanatun", _K, 1_200_000,
           "Kain tenun sotis (songket Timor) dengan motif timbul, benang katun pilihan, "
           "170 x 70 cm."),
        _P("Selendang Sotis Motif Bunga", _K, 300_000,
           "Selendang sotis motif bunga khas Amanatun, 190 x 30 cm, warna hitam-kuning."),
        _P("Sarung Tenun Beti Amanatun", _K, 1_100_000,
           "Selimut pria (beti) tenun ikat Amanatun untuk upacara adat, 200 x 110 cm."),
    )),
    _B("tenun-oelbubuk", "Tenun Mollo Oelbubuk", "Sarlota Nenobais", True, "53.02.30",
       "Oelbubuk", "Dusun II Oelbubuk", _BINAAN_TENUN, 260_000_000, "tenun", 1.0, (
        _P("Selimut Tenun Mollo Motif Kaif", _K, 1_350_000,
           "Selimut tenun ikat Mollo motif kaif (kait) pewarna alami, 190 x 120 cm."),
        _P("Taplak Meja Tenun Mollo", _K, 225_000,
           "Taplak meja tenun buna Mollo, 150 x 50 cm, bisa dicuci tangan."),
        _P("Dompet Tenun Ikat Mollo", _K, 75_000,
           "Dompet kecil berlapis tenun ikat Mollo, muat kartu dan uang lipat."),
        _P("Syal Tenun Mollo", _K, 150_000,
           "Syal tenun ikat ringan 160 x 25 cm, motif garis khas pegunungan Mollo."),
    )),
    _B("madu-mutis", "Madu Hutan Mutis Fatumnasi", "Ferdinand Oematan", False, "53.02.12",
       "Fatumnasi", "Kampung Adat Fatumnasi", _BINAAN_MADU, 2_600_000_000, "madu", 1.5, (
        _P("Madu Hutan Timor Mutis 250 ml", _M, 85_000,
           "Madu hutan liar dari lebah Apis dorsata di kawasan Cagar Alam Mutis, dipanen "
           "dengan cara tiris tanpa pemanasan.", ("PIRT", "halal")),
        _P("Madu Hutan Timor Mutis 500 ml", _M, 150_000,
           "Madu hutan Mutis botol kaca 500 ml, kadar air di bawah 22 %, tanpa campuran gula.",
           ("PIRT", "halal")),
        _P("Madu Hutan Timor Mutis 1 liter", _M, 275_000,
           "Kemasan keluarga 1 liter madu hutan Mutis, dipanen kelompok tani hutan "
           "Fatumnasi.", ("PIRT", "halal")),
    )),
    _B("madu-mollo", "Madu Lebah Hutan Mollo Utara", "Yakob Lake", False, "53.02.03",
       "Netpala", "Desa Netpala, Dusun I", _BINAAN_MADU, 180_000_000, "madu", 1.0, (
        _P("Madu Hutan Mollo 350 ml", _M, 110_000,
           "Madu hutan dari pohon ampupu di lereng Gunung Mutis, botol 350 ml.",
           ("PIRT",)),
        _P("Madu Sarang Mollo 300 g", _M, 135_000,
           "Potongan sarang madu utuh dalam kotak food grade 300 g, langsung dari sarang.",
           ("PIRT",)),
    )),
    _B("jeruk-tuasene", "Olahan Jeruk Keprok SoE Tuasene", "Ester Nope", True, "53.02.02",
       "Tuasene", "Desa Tuasene, RT 05", _BINAAN_PANGAN, 95_000_000, "jeruk", 1.0, (
        _P("Sirup Jeruk Keprok SoE 620 ml", _M, 45_000,
           "Sirup dari perasan jeruk keprok SoE asli, manis-segar, tanpa pewarna.",
           ("PIRT",)),
        _P("Selai Jeruk Keprok SoE 250 g", _M, 35_000,
           "Selai (marmalade) jeruk keprok SoE dengan potongan kulit, cocok untuk roti.",
           ("PIRT",)),
        _P("Manisan Kulit Jeruk Keprok SoE 200 g", _M, 25_000,
           "Manisan kulit jeruk keprok SoE yang dijemur, camilan khas musim panen.",
           ("PIRT",), in_stock=False),
    )),
    _B("sei-oebesa", "Se'i Oma Tallo Kota SoE", "Naomi Tallo", True, "53.02.01",
       "Oebesa", "Jl. Gajah Mada No. 41", _BINAAN_PANGAN, 640_000_000, "sei", 1.3, (
        _P("Se'i Babi Asap Kayu Kesambi 500 g", _M, 140_000,
           "Se'i babi diasap dengan bara kayu kesambi dan daun kesambi, vakum 500 g, tahan "
           "2 minggu di kulkas.", ("PIRT",)),
        _P("Se'i Sapi Asap 500 g", _M, 165_000,
           "Se'i sapi asap kayu kesambi, irisan panjang khas Timor, kemasan vakum 500 g.",
           ("PIRT",)),
        _P("Sambal Lu'at Se'i 150 g", _M, 30_000,
           "Sambal lu'at pendamping se'i: cabai, daun kemangi dan jeruk nipis, botol 150 g.",
           ("PIRT",)),
    )),
    _B("kopi-fatukoko", "Kopi Mollo Nekmese", "Marthen Selan", False, "53.02.22",
       "Fatukoko", "Desa Fatukoko, Dusun III", _BINAAN_PANGAN, 230_000_000, "pangan", 1.2, (
        _P("Kopi Arabika Mollo Bubuk 250 g", _M, 65_000,
           "Arabika dataran tinggi Mollo (1.200 mdpl), sangrai medium, giling sedang.",
           ("PIRT", "halal")),
        _P("Kopi Arabika Mollo Biji Sangrai 500 g", _M, 120_000,
           "Biji kopi arabika Mollo sangrai medium, proses natural, untuk seduh manual.",
           ("PIRT", "halal")),
        _P("Kopi Robusta Mollo Bubuk 250 g", _M, 50_000,
           "Robusta Mollo sangrai gelap, kental dan pahit, cocok untuk kopi susu.",
           ("PIRT", "halal")),
    )),
    _B("keripik-olais", "Keripik Pisang Kuanfatu", "Maria Taneo", True, "53.02.11",
       "Olais", "Desa Olais, RT 02", _BINAAN_PANGAN, 75_000_000, "pangan", 1.0, (
        _P("Keripik Pisang Manis 200 g", _M, 20_000,
           "Keripik pisang kepok iris tipis dengan gula aren, renyah, kemasan ziplock.",
           ("PIRT", "halal")),
        _P("Keripik Pisang Balado 200 g", _M, 22_000,
           "Keripik pisang kepok bumbu balado pedas manis.", ("PIRT", "halal")),
        _P("Sale Pisang Kepok 250 g", _M, 25_000,
           "Sale pisang kepok jemur matahari, legit tanpa pengawet.", ("PIRT", "halal")),
    )),
    _B("luat-tublopo", "Sambal Lu'at Mama Nubatonis", "Welhelmina Nubatonis", True,
       "53.02.07", "Tublopo", "Desa Tublopo, Dusun I", _BINAAN_PANGAN, 60_000_000, "pangan",
       0.9, (
        _P("Sambal Lu'at Botol 150 g", _M, 28_000,
           "Sambal lu'at khas Timor: cabai rawit, daun kemangi, jeruk nipis, garam.",
           ("PIRT",)),
        _P("Sambal Lu'at Pedas Ekstra 150 g", _M, 30_000,
           "Lu'at dengan cabai rawit Timor lebih banyak untuk penyuka pedas.", ("PIRT",)),
        _P("Lu'at Kering Daun Kemangi 100 g", _M, 25_000,
           "Lu'at kering tahan 3 bulan, tinggal tambah perasan jeruk nipis.", ("PIRT",)),
    )),
    _B("bose-benlutu", "Jagung Bose Batu Putih", "Dominggus Boimau", False, "53.02.14",
       "Benlutu", "Desa Benlutu, RT 07", _BINAAN_PANGAN, 55_000_000, "pangan", 0.8, (
        _P("Jagung Bose Instan 500 g", _M, 30_000,
           "Jagung bose (jagung tumbuk) pratanak, masak 20 menit dengan santan.",
           ("PIRT",)),
        _P("Jagung Titi 250 g", _M, 25_000,
           "Jagung titi (emping jagung) pipih dari jagung lokal, digoreng atau disangrai.",
           ("PIRT",)),
        _P("Paket Bose Kacang Merah 1 kg", _M, 50_000,
           "Jagung bose dan kacang merah lokal siap masak untuk 8 porsi.", ("PIRT",)),
    )),
    _B("kue-nasi", "Kue Rambut & Gula Lempeng Nasi", "Debora Sabat", True, "53.02.09",
       "Nasi", "Desa Nasi, Dusun II", _BINAAN_PANGAN, 48_000_000, "pangan", 0.8, (
        _P("Kue Rambut Khas Timor 250 g", _M, 25_000,
           "Kue rambut dari tepung beras dan gula lontar, digoreng berbentuk sarang.",
           ("PIRT",)),
        _P("Gula Lempeng Lontar 500 g", _M, 30_000,
           "Gula lempeng dari nira lontar dimasak di tungku kayu, dibungkus daun lontar.",
           ("PIRT",)),
        _P("Kue Cucur Gula Lempeng (isi 10)", _M, 20_000,
           "Kue cucur manis dengan gula lempeng lontar, dibuat setiap pesanan.",
           ("PIRT",), in_stock=False),
    )),
    _B("anyaman-kolbano", "Anyaman Lontar Kolbano", "Oktovianus Nomleni", False, "53.02.19",
       "Kolbano", "Desa Kolbano, dekat pantai", _BINAAN_TENUN, 40_000_000, "anyaman", 0.7, (
        _P("Haik Anyaman Lontar", _K, 45_000,
           "Haik (wadah air/nira) anyaman daun lontar, dipakai juga sebagai hiasan.", ()),
        _P("Tikar Anyaman Lontar 1 x 2 m", _K, 175_000,
           "Tikar dari daun lontar kering, anyaman rapat dua warna.", ()),
        _P("Kotak Sirih Pinang Anyaman (Oko Mama)", _K, 65_000,
           "Oko mama, wadah sirih pinang untuk menyambut tamu dalam adat Timor.", ()),
    )),
    # ---- deliberately imperfect (FLAWS) -------------------------------------------
    _B("ubi-noenoni", "Keripik Ubi Ungu Oenino", "Yohanis Kase", False, "53.02.18",
       "Noenoni", "Desa Noenoni, RT 01", None, 30_000_000, "pangan", 0.6, (
        _P("Keripik Ubi Ungu 200 g", _M, 18_000,
           "Keripik ubi ungu lokal Oenino, digoreng dengan minyak kelapa.", ("PIRT",)),
        _P("Keripik Talas Pedas 200 g", _M, 18_000,
           "Keripik talas bumbu cabai kering, renyah dan gurih.", ("PIRT",)),
    ), flaw="not_binaan"),
    _B("galeri-alak", "Galeri Tenun Timor Alak", "Paulina Boimau", True, "53.71.01",
       "Alak", "Jl. Alak Raya No. 27, Kelurahan Alak, Kota Kupang", _BINAAN_TENUN,
       350_000_000, "tenun", 0.9, (
        _P("Selimut Tenun Timor Motif Buna", _K, 1_300_000,
           "Selimut tenun buna dari penenun asal Amanuban, 180 x 115 cm."),
        _P("Selendang Tenun Timor Hitam", _K, 250_000,
           "Selendang tenun ikat dasar hitam motif cecak, 190 x 30 cm."),
    ), flaw="outside_tts"),
    _B("tenun-pollo", "Tenun Ikat Amanuban Selatan Pollo", "Rut Taneo", True, "53.02.06",
       "Pollo", "Desa Pollo, Dusun IV", _BINAAN_TENUN, 120_000_000, "tenun", 0.8, (
        _P("Sarung Tenun Ikat Pollo", _K, 900_000,
           "Sarung tenun ikat motif burung khas Amanuban Selatan, 150 x 65 cm."),
        _P("Selendang Tenun Pollo", _K, 240_000,
           "Selendang tenun ikat warna alam, 180 x 30 cm."),
    ), flaw="invalid_nib"),
    _B("dodol-oelet", "Dodol & Selai Nanas Oelet", "Fransiska Sabat", True, "53.02.04",
       "Oelet", "Desa Oelet, RT 04", _BINAAN_PANGAN, 42_000_000, "pangan", 0.7, (
        _P("Selai Nanas Oelet 250 g", _M, 30_000,
           "Selai nanas madu Amanuban Timur, dimasak dengan gula lempeng.", ("PIRT",)),
        _P("Dodol Nanas 250 g", _M, 28_000, "", ("PIRT",), complete=False),
    ), flaw="incomplete_product"),
    _B("tenun-bikekneno", "Tenun Ikat Bikekneno Mollo Selatan", "Sonya Nenobais", True,
       "53.02.02", "Bikekneno", "Desa Bikekneno, Dusun I", _BINAAN_TENUN, 150_000_000,
       "tenun", 0.9, (
        _P("Selimut Tenun Ikat Mollo Selatan", _K, 1_250_000,
           "Selimut tenun ikat motif kaif Mollo, pewarna alam, 185 x 120 cm."),
        _P("Sarung Tenun Buna Mollo", _K, 850_000,
           "Sarung tenun buna warna cerah, 150 x 65 cm."),
        _P("Gantungan Kunci Tenun", _K, 15_000,
           "Gantungan kunci dari potongan tenun ikat, oleh-oleh ringan dari SoE."),
    ), flaw="nik_not_tts"),
)

# The ``nik_not_tts`` owner was registered in a Kemendagri region outside TTS (53.04)
# before moving to Mollo Selatan: a warning for staff, not a reject (DESIGN §8).
NIK_REGION = {"nik_not_tts": "5304"}
# Kecamatan of first NIK registration when the business sits outside TTS.
NIK_KECAMATAN = {"galeri-alak": "05"}
