//! Signing and verifying one access token, per algorithm: the CPU cost under
//! the token endpoint and a cold Bearer validation.

use criterion::{Criterion, criterion_group, criterion_main};
use tessera::{jwt::keys::generate, kinds::KeyAlg};

fn sign_and_verify(c: &mut Criterion) {
    let payload = br#"{"iss":"http://127.0.0.1:8080","sub":"01a2045d-a5f6-743e-b8b5-fe0ae5364f28","aud":"http://127.0.0.1:8080","exp":4102444800,"iat":1795369575,"nbf":1795369575,"jti":"9c1fec30-4220-4028-a4b1-7c211f8af177","client_id":"billing-sync","scope":"introspect profile","token_kind":"client_credentials"}"#;
    for alg in [KeyAlg::Es256, KeyAlg::EdDsa, KeyAlg::Rs256] {
        let key = generate(alg).expect("key");
        let mut validation = jsonwebtoken::Validation::new(alg.jwt_algorithm());
        validation.set_audience(&["http://127.0.0.1:8080"]);
        let token = key.sign_jwt(payload).expect("signs");
        c.bench_function(&format!("sign {alg}"), |b| {
            b.iter(|| key.sign_jwt(std::hint::black_box(payload)).unwrap())
        });
        c.bench_function(&format!("verify {alg}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(
                    std::hint::black_box(&token),
                    &key.decoding,
                    &validation,
                )
                .unwrap()
            })
        });
    }
}

criterion_group!(benches, sign_and_verify);
criterion_main!(benches);
