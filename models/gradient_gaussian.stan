// Hierarchical ICB x year gradient model, Gaussian likelihood with the practice effects
// integrated out analytically (sufficient statistics).  Mirrors
// hepcausal.models.gradient_pymc.build_pymc_model (marginalise=True) exactly: same
// standardised scale, priors, sum-to-zero bases and non-centred hierarchy.
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
  matrix[G, T] D;  // double-centred treated x post indicator  // unused (Student-t family, gradient_explicit.stan)
  // sufficient statistics (hepcausal.models.gradient_data.GaussianStats)
  int<lower=1> J;
  vector[J - 1] n_per;
  vector[J] count;
  vector[J] syy;
  matrix[2 * G * T, J] sxy;
  int<lower=0> nnz;
  matrix[nnz, J] sxx;
  array[nnz] int<lower=1, upper=2 * G * T> row_idx;
  array[nnz] int<lower=1, upper=2 * G * T> col_idx;
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
  real<lower=0> sigma;
}
model {
  matrix[G, T] alpha = cells(mu, sigma_icb, z_a, centred[1], prior_year_sd, z_c, sigma_int,
                             z_d, centred[3], B_G, B_T);
  matrix[G, T] beta = cells(b0, sigma_icb_slope, z_b, centred[2], prior_year_slope_sd, z_e,
                            sigma_int_slope, z_f, centred[4], B_G, B_T)
                     + treat(delta_treated, D);
  vector[2 * G * T] theta = append_row(to_vector(alpha'), to_vector(beta'));  // row-major cells
  vector[J] v = append_row(rep_vector(square(sigma), 1), square(tau) + square(sigma) ./ n_per);
  vector[J] w = inv(v);
  real quad = dot_product(sxx * w, theta[row_idx] .* theta[col_idx]);
  real lin = dot_product(theta, sxy * w);
  target += -0.5 * (dot_product(count, log(v)) + dot_product(syy, w) - 2 * lin + quad);

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
  sigma ~ normal(0, prior_sigma);
}
generated quantities {
  matrix[G, T] sii = scale * cells(b0, sigma_icb_slope, z_b, centred[2], prior_year_slope_sd,
                                   z_e, sigma_int_slope, z_f, centred[4], B_G, B_T)
                       + scale * treat(delta_treated, D);
  matrix[G, T] level = loc + scale * cells(mu, sigma_icb, z_a, centred[1], prior_year_sd, z_c,
                                           sigma_int, z_d, centred[3], B_G, B_T);
}
