// Panel-effects model behind DiD, DDD and event study (mirrors hepcausal.models.panel_effects).
// Standardised outcome y; practices (unit) nested in ICBs (grp); years (tim); ICB x year cells.
// y = m_g + tau_t + a_i + sigma_cell dc(z)_gt + sigma_trend (w_g - mean w) time
//     + x (b_g + beta_t + sigma_cell_gradient dc(v)_gt) + X_eff effect + X_cov beta_cov + eps,
// dc() = double centring of a G x T matrix (row and column means removed).
// a_i ~ N(m_g + b_g rbar_i, sigma_unit): unit_raw = a_i (centred_units) or standardised; the
// row then uses b_g (r_it - rbar_i) (same model, b_g decoupled from the practice intercepts).
// Year effects sum to zero (Q_year basis); optional blocks are switched on by use_* flags.
functions {
  matrix double_centre(matrix z) {
    int G = rows(z);
    int T = cols(z);
    return z - rep_matrix(z * rep_vector(1.0 / T, T), T)
           - rep_matrix(rep_row_vector(1.0 / G, G) * z, G) + mean(z);
  }
}
data {
  int<lower=1> N;
  int<lower=1> n_unit;
  int<lower=1> n_group;
  int<lower=1> n_time;
  array[N] int<lower=1, upper=n_unit> unit;
  array[n_unit] int<lower=1, upper=n_group> unit_group;
  array[N] int<lower=1, upper=n_group> grp;
  array[N] int<lower=1, upper=n_time> tim;
  array[N] int<lower=1, upper=n_group * n_time> gt;  // column-major (group, year) cell
  vector[N] y;
  vector[N] rank_c;
  vector[n_unit] unit_rank;  // each unit's mean rank_c (used when use_gradient)
  matrix[n_time, n_time - 1] Q_year;  // orthonormal zero-sum basis of year effects
  vector[N] time_c;
  int<lower=0> K;
  matrix[N, K] X_eff;
  int<lower=0> P;
  matrix[N, P] X_cov;
  int<lower=0, upper=1> centred_units;
  int<lower=0, upper=1> use_cell;
  int<lower=0, upper=1> use_trend;
  int<lower=0, upper=1> use_gradient;
  int<lower=0, upper=1> use_cell_gradient;
  real<lower=0> prior_group_sd;
  real<lower=0> prior_year_sd;
  real<lower=0> prior_unit_sigma;
  real<lower=0> prior_cell_sigma;
  real<lower=0> prior_trend_sigma;
  real<lower=0> prior_gradient_sd;
  real<lower=0> prior_cell_gradient_sigma;
  real<lower=0> prior_effect_sd;
  real<lower=0> prior_covariate_sd;
  real<lower=0> prior_noise_sigma;
  real<lower=0> prior_scale_sd;
  real<lower=0> prior_nu_scale;
  int<lower=0, upper=1> use_scales;  // ICB-specific residual scales
  int<lower=1, upper=2> family;  // 1 gaussian, 2 student_t
  vector<lower=0>[N] w;  // relative weights (ones when unweighted)
}
parameters {
  vector[n_group] group_mean;
  vector[n_time - 1] year_raw;
  real<lower=0> sigma_unit;
  vector[n_unit] unit_raw;
  array[use_cell] real<lower=0> sigma_cell;
  matrix[use_cell * n_group, use_cell * n_time] z_cell;
  array[use_trend] real<lower=0> sigma_trend;
  vector[use_trend * n_group] z_trend;
  vector[use_gradient * n_group] gradient_group;
  vector[use_gradient * (n_time - 1)] gradient_year_raw;
  array[use_cell_gradient] real<lower=0> sigma_cell_gradient;
  matrix[use_cell_gradient * n_group, use_cell_gradient * n_time] z_cell_gradient;
  vector[K] effect;
  vector[P] beta_cov;
  real<lower=0> sigma;
  array[use_scales] real<lower=0> sigma_scale;
  vector[use_scales * n_group] z_scale;
  array[family == 2] real<lower=0> nu;
}
transformed parameters {
  vector[n_time] year_effect = Q_year * year_raw;
  vector[use_gradient * n_time] gradient_year;
  if (use_gradient) gradient_year = Q_year * gradient_year_raw;
}
model {
  vector[n_unit] unit_mean = group_mean[unit_group];
  if (use_gradient) unit_mean += gradient_group[unit_group] .* unit_rank;
  vector[n_unit] unit_effect = centred_units ? unit_raw : unit_mean + sigma_unit * unit_raw;
  vector[N] mu = year_effect[tim] + unit_effect[unit];
  if (use_cell) mu += sigma_cell[1] * to_vector(double_centre(z_cell))[gt];
  if (use_trend) mu += sigma_trend[1] * ((z_trend - mean(z_trend))[grp] .* time_c);
  if (use_gradient) {
    mu += gradient_group[grp] .* (rank_c - unit_rank[unit]);
    vector[N] slope = gradient_year[tim];
    if (use_cell_gradient) {
      slope += sigma_cell_gradient[1] * to_vector(double_centre(z_cell_gradient))[gt];
    }
    mu += slope .* rank_c;
  }
  if (K > 0) mu += X_eff * effect;
  if (P > 0) mu += X_cov * beta_cov;

  group_mean ~ normal(0, prior_group_sd);
  year_raw ~ normal(0, prior_year_sd);
  sigma_unit ~ normal(0, prior_unit_sigma);
  if (centred_units) unit_raw ~ normal(unit_mean, sigma_unit);
  else unit_raw ~ std_normal();
  sigma_cell ~ normal(0, prior_cell_sigma);
  to_vector(z_cell) ~ std_normal();
  sigma_trend ~ normal(0, prior_trend_sigma);
  z_trend ~ std_normal();
  gradient_group ~ normal(0, prior_gradient_sd);
  gradient_year_raw ~ normal(0, prior_gradient_sd);
  sigma_cell_gradient ~ normal(0, prior_cell_gradient_sigma);
  to_vector(z_cell_gradient) ~ std_normal();
  effect ~ normal(0, prior_effect_sd);
  beta_cov ~ normal(0, prior_covariate_sd);
  sigma ~ normal(0, prior_noise_sigma);
  sigma_scale ~ normal(0, prior_scale_sd);
  z_scale ~ std_normal();
  nu ~ gamma(2, inv(prior_nu_scale));
  vector[N] sd = sigma ./ sqrt(w);
  if (use_scales) sd = sd .* exp(sigma_scale[1] * z_scale)[grp];
  if (family == 2) y ~ student_t(nu[1], mu, sd);
  else y ~ normal(mu, sd);
}
