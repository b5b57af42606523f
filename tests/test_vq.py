import torch

from par_demo.models.vq import VQArgs, VQModel
from support import INDEX, golden_expected, golden_vq_args, golden_weights


def test_decoder_matches_the_reference():
    model = VQModel(golden_vq_args()).eval()
    model.load_state_dict(golden_weights("vq_tiny"), strict=True)
    expected = golden_expected("vq_tiny")
    with torch.no_grad():
        image = model.decode_codes(expected["codes"].view(2, 4, 4))
    assert image.shape == expected["image"].shape
    assert (image - expected["image"]).abs().max().item() < 1e-4


def test_vq16_has_exactly_the_released_keys():
    with torch.device("meta"):
        model = VQModel(VQArgs())
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: s for k, (s, _) in INDEX["manifests"]["vq_ds16_c2i"].items()}


def test_encode_quantises_onto_unit_codebook_vectors_and_decodes_to_image_size():
    torch.manual_seed(0)
    args = VQArgs(codebook_size=16, codebook_embed_dim=4, z_channels=32, ch=32,
                  encoder_ch_mult=(1, 2), decoder_ch_mult=(1, 2), num_res_blocks=1)
    model = VQModel(args)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    reconstruction, q = model(images)
    assert q.codes.shape == (2, 8, 8) and reconstruction.shape == images.shape
    assert torch.allclose(q.z_q.norm(dim=1), torch.ones(2, 8, 8), atol=1e-5)
    assert torch.allclose(model.quantize.lookup(q.codes), q.z_q.detach(), atol=1e-6)
    (reconstruction.pow(2).mean() + q.codebook_loss + q.commit_loss).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
