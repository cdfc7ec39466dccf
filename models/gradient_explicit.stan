// Hierarchical ICB x year gradient model with explicit non-centred practice effects and a
// likelihood-family switch (hepcausal.models.families.FAMILIES, field stan_family):
//   1 normal (gaussian, lognormal: standardised outcome z), 2 student_t (z),
//   3 binomial (counts, logit link), 4 beta_binomial (counts, logit link).
// Mirrors hepcausal.models.gradient_pymc.build_pymc_model (explicit practice effects): same
// standardised scale, priors, sum-to-zero bases, parameter names and transforms.
functions {
  // alpha (or beta) cells: m + ICB + year + ICB x year effects, each summing to zero; the
  // ICB / interaction coordinates are centred (N(0, s)) or non-centred (s * N(0, 1)) per flag
  matrix cells(real m, real s_icb, vector z_icb, int c_icb, real s_year, vector z_year,
               real s_int, matrix z_int, int c_int, matrix B_G, matrix B_T) {
    int G = rows(B_G);
    int T = rows(B_T);
    vector[G - 1] r_icb = c_icb ? z_icb : s_icb * z_icb;
    matrix[G - 1, T - 1] r_int = c_int ? z_int : s_int * z_int;
    return rep_matrix(m, G, T) + rep_matrix(B_G * r_icb, T)
           + rep_matrix((s_year * (B_T * z_year))', G) + B_G * r_int * B_T';
  }
  // optional treated x post SII term (zero when switched off)
  matrix treat(array[] real delta, matrix D) {
    return size(delta) > 0 ? delta[1] * D : rep_matrix(0, rows(D), cols(D));
  }
  real raw_lpdf(vector z, real s, int centred) {
    return centred ? normal_lpdf(z | 0, s) : std_normal_lpdf(z);
  }
}
data {
  int<lower=2> G;
  int<lower=2> T;
  matrix[G, G - 1] B_G;
  matrix[T, T - 1] B_T;
  real loc;
  real<lower=0> scale;
  array[4] int<lower=0, upper=1> centred;  // blocks a, b, d, f
  real<lower=0> prior_mu_sd;
  real<lower=0> prior_slope_sd;
  real<lower=0> prior_sigma_icb;
  real<lower=0> prior_sigma_icb_slope;
  real<lower=0> prior_year_sd;
  real<lower=0> prior_year_slope_sd;
  real<lower=0> prior_sigma_int;
  real<lower=0> prior_sigma_int_slope;
  real<lower=0> prior_tau;
  real<lower=0> prior_sigma;
  real<lower=0> prior_overdispersion;
  real<lower=0> prior_nu_scale;
  int<lower=0, upper=1> has_treat;  // treated x post SII term delta_treated * D
  matrix[G, T] D;  // double-centred treated x post indicator
  int<lower=1> N;
  int<lower=1> P;
  array[N] int<lower=1, upper=P> pidx;
  // practice effects: 0 non-centred (u = tau * z_u), 1 hierarchically centred (z_u ~ N(m, tau),
  // m = the practice's mean linear predictor a[cell] + b[cell] .* rc, u = z_u - m)
  int<lower=0, upper=1> centred_u;
  array[N] int<lower=1, upper=G * T> cell;
  vector[N] rc;
  int<lower=1, upper=4> family;
  vector[family <= 2 ? N : 0] z;  // standardised outcome (continuous families)
  array[family >= 3 ? N : 0] int<lower=0> succ;  // counts (binomial families)
  array[family >= 3 ? N : 0] int<lower=0> trials;
}
transformed data {
  vector[P] n_rows = rep_vector(0, P);  // rows per practice
  for (n in 1:N) {
    n_rows[pidx[n]] += 1;
  }
}
parameters {
  real mu;
  real b0;
  real<lower=0> sigma_icb;
  real<lower=0> sigma_icb_slope;
  real<lower=0> sigma_int;
  real<lower=0> sigma_int_slope;
  vector[G - 1] z_a;
  vector[G - 1] z_b;
  vector[T - 1] z_c;
  vector[T - 1] z_e;
  matrix[G - 1, T - 1] z_d;
  matrix[G - 1, T - 1] z_f;
  array[has_treat] real delta_treated;
  real<lower=0> tau;
  vector[P] z_u;
  array[family <= 2] real<lower=0> sigma;
  array[family == 2] real<lower=0> nu;
  array[family == 4] real<lower=0> overdispersion;
}
model {
  vector[G * T] a = to_vector(cells(mu, sigma_icb, z_a, centred[1], prior_year_sd, z_c, sigma_int,
                                    z_d, centred[3], B_G, B_T)');
  vector[G * T] b = to_vector((cells(b0, sigma_icb_slope, z_b, centred[2], prior_year_slope_sd,
                                     z_e, sigma_int_slope, z_f, centred[4], B_G, B_T)
                               + treat(delta_treated, D))');
  vector[N] lin = a[cell] + b[cell] .* rc;
  vector[P] m = rep_vector(0, P);  // the practices' mean linear predictor (centred_u)
  if (centred_u) {
    for (n in 1:N) {
      m[pidx[n]] += lin[n];
    }
    m ./= n_rows;
  }
  // standardised scale for continuous families, log-odds (centred on loc) for counts
  vector[N] eta = (family >= 3 ? loc : 0.0) + lin
                  + (centred_u ? (z_u - m)[pidx] : tau * z_u[pidx]);
  if (family == 1) {
    z ~ normal(eta, sigma[1]);
  } else if (family == 2) {
    z ~ student_t(nu[1], eta, sigma[1]);
  } else if (family == 3) {
    succ ~ binomial_logit(trials, eta);
  } else {
    real phi = inv_square(overdispersion[1]);
    vector[N] p = inv_logit(eta);
    succ ~ beta_binomial(trials, p * phi, (1 - p) * phi);
  }
  sigma ~ normal(0, prior_sigma);
  nu ~ gamma(2, inv(prior_nu_scale));
  overdispersion ~ normal(0, prior_overdispersion);
  mu ~ normal(0, prior_mu_sd);
  b0 ~ normal(0, prior_slope_sd);
  delta_treated ~ normal(0, prior_slope_sd);
  sigma_icb ~ normal(0, prior_sigma_icb);
  sigma_icb_slope ~ normal(0, prior_sigma_icb_slope);
  sigma_int ~ normal(0, prior_sigma_int);
  sigma_int_slope ~ normal(0, prior_sigma_int_slope);
  z_a ~ raw(sigma_icb, centred[1]);
  z_b ~ raw(sigma_icb_slope, centred[2]);
  z_c ~ std_normal();
  z_e ~ std_normal();
  to_vector(z_d) ~ raw(sigma_int, centred[3]);
  to_vector(z_f) ~ raw(sigma_int_slope, centred[4]);
  tau ~ normal(0, prior_tau);
  if (centred_u) {
    z_u ~ normal(m, tau);
  } else {
    z_u ~ std_normal();
  }
}
generated quantities {
  matrix[G, T] sii = scale * cells(b0, sigma_icb_slope, z_b, centred[2], prior_year_slope_sd,
                                   z_e, sigma_int_slope, z_f, centred[4], B_G, B_T)
                       + scale * treat(delta_treated, D);
  matrix[G, T] level = loc + scale * cells(mu, sigma_icb, z_a, centred[1], prior_year_sd, z_c,
                                           sigma_int, z_d, centred[3], B_G, B_T);
}
