//! The start page: the person's tokens that expire soon and, for admins,
//! tokens issued and validations per day as SVG bar charts, and machine users
//! whose client secrets are getting old.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::{Date, Duration};

use super::{
    page::{Layout, ago, fmt_time, render, see_other},
    session,
    views::TokenRow,
};
use crate::{
    domain::stats, http::errors::WebError, state::AppState, storage::entities::daily_count,
};

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    l: Layout,
    expiring: Vec<TokenRow>,
    chart: Option<Chart>,
    stale: Vec<(String, String, String)>,
    /// Machine users nobody enabled looks after: (id, username).
    orphans: Vec<(String, String)>,
}

pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let Some(me) = session::current(&req, &state).await? else {
        return Ok(see_other("/login"));
    };
    let expiring =
        stats::expiring_tokens(&state.db.read, me.session.principal.id, Duration::days(14)).await?;
    let orphans = if me.session.is_admin() {
        crate::domain::principals::list_machine_users_filtered(
            &state.db.read,
            crate::domain::principals::MachineUserFilter {
                orphaned: Some(true),
                managed_by: None,
            },
            crate::domain::PageRequest::default(),
        )
        .await?
        .items
        .into_iter()
        .map(|m| (m.id.to_string(), m.username))
        .collect()
    } else {
        Vec::new()
    };
    let (chart, stale) = if me.session.is_admin() {
        let issued = stats::tokens_issued_per_day(&state.db.read, 30).await?;
        let validations = validations_per_day(&state, 30).await?;
        let stale = stats::stale_secrets(&state.db.read, Duration::days(90))
            .await?
            .into_iter()
            .map(|s| {
                (
                    s.machine_user_id.to_string(),
                    s.username,
                    format!("{} ({})", fmt_time(s.created_at), ago(s.created_at)),
                )
            })
            .collect();
        (Some(Chart::new(&issued, &validations)), stale)
    } else {
        (None, Vec::new())
    };
    render(&Dashboard {
        l: Layout::new(&me, "home"),
        expiring: expiring.iter().map(TokenRow::from).collect(),
        chart,
        stale,
        orphans,
    })
}

pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub h: u32,
    pub title: String,
}

pub struct Series {
    pub name: &'static str,
    pub total: u64,
    pub max: u64,
    pub bars: Vec<Bar>,
    pub first: String,
    pub last: String,
}

/// Two small bar charts (tokens issued, validations) drawn as inline SVG.
pub struct Chart {
    pub series: Vec<Series>,
}

pub const CHART_HEIGHT: u32 = 80;
/// Room left of the bars for the y axis and its numbers.
pub const CHART_LEFT: u32 = 30;

impl Chart {
    pub fn new(issued: &[(Date, u64)], validations: &[(Date, u64)]) -> Self {
        Self {
            series: vec![
                Self::series("Tokens issued per day", issued),
                Self::series("Token validations per day", validations),
            ],
        }
    }

    fn series(name: &'static str, days: &[(Date, u64)]) -> Series {
        let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, (day, n))| {
                let h = if max == 0 {
                    0
                } else {
                    // At least one pixel for a non-zero day.
                    ((n * u64::from(CHART_HEIGHT)).div_ceil(max)) as u32
                };
                Bar {
                    x: CHART_LEFT + i as u32 * 10,
                    y: CHART_HEIGHT - h,
                    h,
                    title: format!("{}: {n}", daily_count::day_key(*day)),
                }
            })
            .collect();
        Series {
            name,
            total: days.iter().map(|(_, n)| *n).sum(),
            max,
            bars,
            first: days
                .first()
                .map(|(d, _)| daily_count::day_key(*d))
                .unwrap_or_default(),
            last: days
                .last()
                .map(|(d, _)| daily_count::day_key(*d))
                .unwrap_or_default(),
        }
    }
}

/// Successful validations per day from the daily counters.
pub async fn validations_per_day(
    state: &AppState,
    days: i64,
) -> Result<Vec<(Date, u64)>, WebError> {
    Ok(stats::validations_per_day(&state.db.read, days).await?)
}
